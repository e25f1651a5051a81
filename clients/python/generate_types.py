"""Writes `tollgate_client/types.py` from the OpenAPI schema Tollgate serves at `/api/schema/`.

    .venv/bin/python clients/python/generate_types.py           # rewrite types.py
    .venv/bin/python clients/python/generate_types.py --check   # exit 1 if types.py is out of date

Run from a checkout of Tollgate: the schema is rendered in-process by the server's own code (Django's test
client, `config.settings.test` unless DJANGO_SETTINGS_MODULE says otherwise). `tests/clients/` regenerates
the file from the served schema and fails when it differs, so a server change that moves a result's shape
fails until this is run.

The schema is the source of truth for each result: its fields and their order, their types, whether the server
always sends them and whether they may be null, its enums and its field descriptions. The tables beside it
(`generate_types_tables.py`, with the header of the module written) add only what the schema does not say:

- which component is which SDK class (`CLASSES`; a class may merge components that differ only by a field
  sent once, such as a project and the project with its first key);
- the values of enum fields the server documents as plain strings (`ENUM_VALUES`), read from the server's
  model choices where there are any, so a new status there shows up here too;
- the shapes of nested objects the schema leaves untyped (`TYPE_OVERRIDES`, `MANUAL_CLASSES`), and what a
  field the server may leave out means when it does, where the schema gives no default (`DEFAULTS`);
- docstrings for the SDK's user and a few convenience methods (`CLASS_DOCS`, `FIELD_DOCS`, `CLASS_BODIES`).

Every table entry is checked against the schema: an entry that names a field the schema no longer has, or
that the schema now types itself, is an error, as is a response object of the API that no class covers.
The output is deterministic and already in `ruff format` style.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from generate_types_tables import (
    CLASS_BODIES,
    CLASS_DOCS,
    CLASSES,
    COMMAND,
    DEFAULTS,
    ENUM_NAMES,
    ENUM_VALUES,
    FIELD_DOCS,
    MANUAL_CLASSES,
    MODULE_DOC,
    TYPE_OVERRIDES,
    UNMAPPED,
    Cls,
    ManualField,
)

HERE = Path(__file__).resolve().parent
TYPES_PATH = HERE / "tollgate_client" / "types.py"
REPO_ROOT = HERE.parent.parent
LINE_LENGTH = 110


class SchemaError(Exception):
    """The schema and the generator's tables disagree: the message says which entry to change."""


# --- reading the schema -----------------------------------------------------------------------------------


@dataclasses.dataclass
class Attribute:
    name: str
    annotation: str
    required: bool
    nullable: bool
    default: str | None = None
    doc: str = ""


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _is_null_enum(schema: Mapping[str, Any]) -> bool:
    return schema.get("enum") == [None]


class Generator:
    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.components: Mapping[str, Any] = schema.get("components", {}).get("schemas", {})
        self.paths: Mapping[str, Any] = schema.get("paths", {})
        self.class_of: dict[str, str] = {}
        for cls in CLASSES:
            for component in cls.components:
                if component not in self.components:
                    raise SchemaError(f"CLASSES: {cls.name} names component {component}, not in the schema.")
                self.class_of.setdefault(component, cls.name)
        self.aliases: dict[str, tuple[str, ...]] = {}
        self.alias_users: dict[str, str] = {}

    # enums

    def _alias(self, cls: str, field: str, values: Sequence[str]) -> str:
        name = ENUM_NAMES.get((cls, field)) or cls + "".join(part.title() for part in field.split("_"))
        known = self.aliases.get(name)
        if known is not None and known != tuple(values):
            raise SchemaError(
                f"{cls}.{field} and {self.alias_users[name]} share the alias {name} but have different values: "
                f"{list(values)} and {list(known)} (give one of them another name in ENUM_NAMES)."
            )
        self.aliases[name] = tuple(values)
        self.alias_users.setdefault(name, f"{cls}.{field}")
        return name

    @staticmethod
    def _server_values(source: str | tuple[str, ...]) -> list[str]:
        if isinstance(source, tuple):
            return list(source)
        obj: Any = None
        parts = source.split(".")
        # The longest importable prefix is the module, the rest attributes (`billing.models.Payment.Status`).
        for cut in range(len(parts) - 1, 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            for attribute in parts[cut:]:
                obj = getattr(obj, attribute, None)
            break
        if obj is None:
            raise SchemaError(f"ENUM_VALUES: cannot import {source}.")
        values = [str(value) for value in (obj.values if hasattr(obj, "values") else obj)]
        return [value for value in values if value]

    # types

    def _annotation(self, cls: str, field: str, prop: Mapping[str, Any]) -> tuple[str, bool]:
        """The Python annotation of a property (without `| None`) and whether the schema lets it be null."""
        nullable = bool(prop.get("nullable"))
        for combinator in ("oneOf", "anyOf", "allOf"):
            if combinator in prop:
                arms = [arm for arm in prop[combinator] if not _is_null_enum(self._resolve(arm))]
                nullable = nullable or len(arms) < len(prop[combinator])
                if len(arms) != 1:
                    return "Any", nullable
                inner, inner_nullable = self._annotation(cls, field, arms[0])
                return inner, nullable or inner_nullable
        if "$ref" in prop:
            name = _ref_name(prop["$ref"])
            target = self.components.get(name)
            if target is None:
                raise SchemaError(f"{cls}.{field} refers to {name}, which the schema does not define.")
            if "enum" in target:
                values = [value for value in target["enum"] if value is not None]
                nullable = nullable or None in target["enum"] or bool(target.get("nullable"))
                return self._alias(cls, field, values), nullable
            if name not in self.class_of:
                raise SchemaError(
                    f"{cls}.{field} is a {name} object, which no class covers: add it to CLASSES."
                )
            return self.class_of[name], nullable
        if "enum" in prop:
            values = [value for value in prop["enum"] if value is not None]
            return self._alias(cls, field, values), nullable or None in prop["enum"]
        kind = prop.get("type")
        if kind == "string":
            return "str", nullable
        if kind == "integer":
            return "int", nullable
        if kind == "number":
            return "float", nullable
        if kind == "boolean":
            return "bool", nullable
        if kind == "array":
            item, item_nullable = self._annotation(cls, field, prop.get("items", {}))
            return f"list[{item} | None]" if item_nullable and item != "Any" else f"list[{item}]", nullable
        if kind == "object":
            extra = prop.get("additionalProperties")
            if isinstance(extra, Mapping) and extra:
                value, value_nullable = self._annotation(cls, field, extra)
                if value_nullable and value != "Any":
                    value = f"{value} | None"
                return f"dict[str, {value}]", nullable
            return "dict[str, Any]", nullable
        return "Any", nullable

    def _resolve(self, prop: Mapping[str, Any]) -> Mapping[str, Any]:
        if "$ref" in prop:
            resolved: Mapping[str, Any] = self.components.get(_ref_name(prop["$ref"]), {})
            return resolved
        return prop

    # classes

    def attributes(self, cls: Cls) -> list[Attribute]:
        if not cls.components:
            return [self._manual(cls.name, spec) for spec in MANUAL_CLASSES[cls.name]]
        merged: dict[str, dict[str, Any]] = {}
        required_in: dict[str, int] = {}
        for component in cls.components:
            schema = self.components[component]
            required = set(schema.get("required", ()))
            for name, prop in schema.get("properties", {}).items():
                if name in merged and merged[name] != prop:
                    raise SchemaError(
                        f"{cls.name}: {name} differs between {', '.join(cls.components)}; they cannot be merged."
                    )
                merged[name] = prop
                required_in[name] = required_in.get(name, 0) + (name in required)
        for excluded in cls.exclude:
            if excluded not in merged:
                raise SchemaError(f"CLASSES: {cls.name} excludes {excluded}, which the schema does not have.")
        attributes = []
        for name, prop in merged.items():
            if name in cls.exclude:
                continue
            attributes.append(
                self._attribute(cls.name, name, prop, required=required_in[name] == len(cls.components))
            )
        return attributes

    def _attribute(self, cls: str, name: str, prop: Mapping[str, Any], *, required: bool) -> Attribute:
        annotation, nullable = self._annotation(cls, name, prop)
        key = (cls, name)
        if key in ENUM_VALUES:
            if annotation != "str":
                raise SchemaError(
                    f"ENUM_VALUES: the schema now types {cls}.{name} as {annotation}: drop its entry."
                )
            annotation = self._alias(cls, name, self._server_values(ENUM_VALUES[key]))
        if key in TYPE_OVERRIDES:
            if "Any" not in annotation:
                raise SchemaError(
                    f"TYPE_OVERRIDES: the schema now types {cls}.{name} as {annotation}: drop its entry."
                )
            annotation = TYPE_OVERRIDES[key]
        attribute = Attribute(name, annotation, required=required, nullable=nullable)
        if not required and "default" in prop and not nullable:
            attribute.default = (
                json.dumps(prop["default"]) if isinstance(prop["default"], str) else repr(prop["default"])
            )
        if key in DEFAULTS:
            if required or attribute.default is not None:
                raise SchemaError(
                    f"DEFAULTS: the schema now says {cls}.{name} is always sent or has a default: drop its entry."
                )
            attribute.default = DEFAULTS[key]
        description = " ".join(str(prop.get("description", "")).split())
        attribute.doc = FIELD_DOCS.get(key, description)
        return attribute

    def _manual(self, cls: str, spec: ManualField) -> Attribute:
        annotation = spec.annotation
        if (cls, spec.name) in ENUM_VALUES:
            annotation = self._alias(cls, spec.name, self._server_values(ENUM_VALUES[(cls, spec.name)]))
        return Attribute(
            spec.name,
            annotation,
            required=spec.required,
            nullable=spec.nullable,
            doc=FIELD_DOCS.get((cls, spec.name), ""),
        )

    # coverage

    def check_coverage(self) -> None:
        """Every object an endpoint answers (directly or as the items of a list) has a class or a reason."""
        covered = set(self.class_of) | set(UNMAPPED)
        for path, operations in sorted(self.paths.items()):
            for method, operation in sorted(operations.items()):
                if not isinstance(operation, Mapping):
                    continue
                for response in operation.get("responses", {}).values():
                    body = response.get("content", {}).get("application/json", {}).get("schema")
                    for component in self._answered(body or {}):
                        if component not in covered:
                            raise SchemaError(
                                f"{method.upper()} {path} answers {component}, which no class covers: add it "
                                "to CLASSES (or to UNMAPPED, with the reason)."
                            )
        for name in UNMAPPED:
            if name not in self.components:
                raise SchemaError(f"UNMAPPED: {name} is no longer in the schema: drop its entry.")
        tables = [ENUM_VALUES, TYPE_OVERRIDES, ENUM_NAMES, FIELD_DOCS, DEFAULTS]
        for cls, field in [key for table in tables for key in table]:
            if not self._has_field(cls, field):
                raise SchemaError(f"{cls}.{field} is in a table but not in the schema: drop its entry.")

    def _answered(self, body: Mapping[str, Any]) -> Iterable[str]:
        if "$ref" not in body:
            return []
        name = _ref_name(body["$ref"])
        data = self.components.get(name, {}).get("properties", {}).get("data", {})
        if name not in self.class_of and data.get("type") == "array" and "$ref" in data.get("items", {}):
            return [_ref_name(data["items"]["$ref"])]  # a list envelope {"object": "list", "data": [...]}
        return [name]

    def _has_field(self, cls_name: str, field: str) -> bool:
        if cls_name in MANUAL_CLASSES:
            return any(spec.name == field for spec in MANUAL_CLASSES[cls_name])
        cls = next((c for c in CLASSES if c.name == cls_name), None)
        if cls is None:
            return False
        return any(field in self.components[c].get("properties", {}) for c in cls.components)


# --- writing the module -----------------------------------------------------------------------------------


def _docstring(text: str, indent: str) -> list[str]:
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if text.endswith('"'):
        text = text[:-1] + '\\"'
    lines = text.split("\n")
    if len(lines) == 1:
        return [f'{indent}"""{text}"""']
    out = [f'{indent}"""{lines[0]}']
    out += [f"{indent}{line}" if line else "" for line in lines[1:]]
    out.append(f'{indent}"""')
    return out


def _alias_lines(name: str, values: Sequence[str]) -> list[str]:
    quoted = [json.dumps(value) for value in values]
    line = f"{name} = Literal[{', '.join(quoted)}]"
    if len(line) <= LINE_LENGTH:
        return [line]
    return [f"{name} = Literal[", *(f"    {value}," for value in quoted), "]"]


def _attribute_lines(attribute: Attribute) -> list[str]:
    annotation = attribute.annotation
    is_list = annotation.startswith("list[")
    optional = attribute.nullable or (not attribute.required and attribute.default is None and not is_list)
    if optional and annotation != "Any":
        annotation = f"{annotation} | None"
    if attribute.required:
        line = f"    {attribute.name}: {annotation}"
    elif attribute.default is not None:
        line = f"    {attribute.name}: {annotation} = {attribute.default}"
    elif is_list and not attribute.nullable:
        line = f"    {attribute.name}: {annotation} = field(default_factory=list)"
    else:
        line = f"    {attribute.name}: {annotation} = None"
    lines = [line]
    if attribute.doc:
        lines += _docstring(attribute.doc, "    ")
    return lines


def render(schema: Mapping[str, Any]) -> str:
    """The text of types.py for this schema (needs Django set up: some enum values are the server's)."""
    generator = Generator(schema)
    generator.check_coverage()
    bodies: list[list[str]] = []
    for cls in CLASSES:
        lines: list[str] = []
        if cls.section:
            lines += [f"# {cls.section}", "", ""]
        lines += ["@dataclass(frozen=True, kw_only=True)", f"class {cls.name}(TollgateObject):"]
        if cls.name in CLASS_DOCS:
            lines += _docstring(CLASS_DOCS[cls.name], "    ")
            lines.append("")
        for attribute in generator.attributes(cls):
            lines += _attribute_lines(attribute)
        if cls.name in CLASS_BODIES:
            lines += CLASS_BODIES[cls.name].rstrip("\n").split("\n")
        bodies.append(lines)

    text = "\n\n\n".join("\n".join(lines) for lines in bodies)
    uses_field = "field(default_factory" in text
    uses_any = re.search(r"\bAny\b", text) is not None

    exported = sorted([cls.name for cls in CLASSES] + list(generator.aliases) + ["TollgateObject"])
    head = [MODULE_DOC, "from __future__ import annotations", ""]
    head.append(
        "from dataclasses import dataclass, field" if uses_field else "from dataclasses import dataclass"
    )
    head.append("from typing import Any, Literal" if uses_any else "from typing import Literal")
    head += ["", "from tollgate_client._objects import TollgateObject", "", "__all__ = ["]
    head += [f'    "{name}",' for name in exported]
    head += ["]", "", "", "# Enums: the values each enum field may have (a newer server may send others)", ""]
    for name, values in sorted(generator.aliases.items()):
        head += _alias_lines(name, values)
    return "\n".join(head) + "\n\n\n" + text + "\n"


# --- running it -------------------------------------------------------------------------------------------


def served_schema() -> dict[str, Any]:
    """The schema the app serves at /api/schema/, rendered in-process (Django must be set up)."""
    from django.test import Client

    response = Client().get("/api/schema/", {"format": "json"})
    if response.status_code != 200:
        raise SchemaError(f"GET /api/schema/ answered {response.status_code}.")
    schema: dict[str, Any] = json.loads(response.content)
    return schema


def stale_message(current: str, expected: str) -> str:
    return stale_report(TYPES_PATH.relative_to(REPO_ROOT), COMMAND, current, expected)


def stale_report(path: Path, command: str, current: str, expected: str) -> str:
    """What a generated file (`path`, as shown) that no longer matches the schema says; the JS client's generator
    says it too."""
    diff = difflib.unified_diff(
        current.splitlines(keepends=True),
        expected.splitlines(keepends=True),
        f"{path.name} (committed)",
        f"{path.name} (from the schema)",
        n=1,
    )
    return (
        f"{path} does not match the schema the server serves: run `{command}` "
        f"and commit the result.\n{''.join(list(diff)[:80])}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only check that types.py is up to date")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    try:
        expected = render(served_schema())
    except SchemaError as exc:
        sys.stderr.write(f"generate_types: {exc}\n")
        return 2
    current = TYPES_PATH.read_text(encoding="utf-8") if TYPES_PATH.exists() else ""
    if args.check:
        if current != expected:
            sys.stderr.write(stale_message(current, expected) + "\n")
            return 1
        return 0
    if current != expected:
        TYPES_PATH.write_text(expected, encoding="utf-8")
        sys.stdout.write(f"wrote {TYPES_PATH.relative_to(REPO_ROOT)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
