"""Writes `clients/js/src/types.ts` from the OpenAPI schema Tollgate serves at `/api/schema/`.

    .venv/bin/python clients/js/generate_ts_types.py           # rewrite src/types.ts
    .venv/bin/python clients/js/generate_ts_types.py --check   # exit 1 if src/types.ts is out of date

The TypeScript twin of `clients/python/generate_types.py`, and built on it: the schema is rendered in-process by
the server's own code the same way, and read by the same `Generator` with the same tables
(`clients/python/generate_types_tables.py`), so both clients name the same objects, fields and enums, and a table
entry the schema has outgrown fails both. Only the writing differs: one `interface` per result object,
describing the JSON as it arrives (the JS client hands the decoded answer back as it is), and one union of string
literals per enum. `tests/clients/test_js_types_match_schema.py` fails while the committed file differs from what
the served schema generates.

A field the server always sends is required; one it may leave out is optional (`?`); one it may send as null
is `… | null`. The Python classes' convenience members (`Event.object`) are left to the JS client's own code.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
PYTHON_GENERATOR = REPO_ROOT / "clients" / "python" / "generate_types.py"
TYPES_PATH = HERE / "src" / "types.ts"
COMMAND = ".venv/bin/python clients/js/generate_ts_types.py"

SCALARS = {
    "str": "string",
    "int": "number",
    "float": "number",
    "bool": "boolean",
    "Any": "unknown",
    "None": "null",
}


def load_python_generator() -> ModuleType:
    """`clients/python/generate_types.py`, imported as when it runs as a script (its tables beside it)."""
    if str(PYTHON_GENERATOR.parent) not in sys.path:
        sys.path.insert(0, str(PYTHON_GENERATOR.parent))
    if "generate_types" in sys.modules:
        return sys.modules["generate_types"]
    spec = importlib.util.spec_from_file_location("generate_types", PYTHON_GENERATOR)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {PYTHON_GENERATOR}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _split_top(annotation: str, separator: str) -> list[str]:
    """`annotation` split on `separator` outside brackets."""
    parts: list[str] = []
    depth = start = 0
    index = 0
    while index < len(annotation):
        char = annotation[index]
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif depth == 0 and annotation.startswith(separator, index):
            parts.append(annotation[start:index].strip())
            index += len(separator)
            start = index
            continue
        index += 1
    parts.append(annotation[start:].strip())
    return parts


def ts_type(annotation: str) -> str:
    """The TypeScript type of one of the Python generator's annotations (`list[CartItem]`, `int | None`, …)."""
    union = _split_top(annotation, " | ")
    if len(union) > 1:
        return " | ".join(ts_type(part) for part in union)
    if annotation.startswith("list[") and annotation.endswith("]"):
        inner = ts_type(annotation[5:-1])
        return f"Array<{inner}>" if " | " in inner else f"{inner}[]"
    if annotation.startswith("dict[") and annotation.endswith("]"):
        _key, value = _split_top(annotation[5:-1], ", ")
        return f"Record<string, {ts_type(value)}>"
    return SCALARS.get(annotation, annotation)


# The shared tables' docs speak Python here and there: their JS words.
JS_WORDS = {
    r"\bNone\b": "null",
    r"\bTrue\b": "true",
    r"\bFalse\b": "false",
    r"\bconstruct_event\b": "constructEvent",
    r"\broll_secret\b": "rollSecret",
}
# Where a table's doc is about the Python class itself (a property the interface does not have).
JS_CLASS_DOCS = {
    "Event": (
        "An outbound event, from `events.retrieve`/`list` or from a verified delivery (`constructEvent`).\n\n"
        "`data.object` is the object the event is about: the payment, subscription, … as it was when the event\n"
        "happened. `previous_attributes` holds the fields that changed, with their old values."
    ),
}


def _js_doc(text: str) -> str:
    for pattern, replacement in JS_WORDS.items():
        text = re.sub(pattern, replacement, text)
    return text


def _comment(text: str, indent: str) -> list[str]:
    lines = _js_doc(text).replace("*/", "*\\/").split("\n")
    if len(lines) == 1:
        return [f"{indent}/** {lines[0]} */"]
    return [f"{indent}/**", *(f"{indent} * {line}".rstrip() for line in lines), f"{indent} */"]


def _property(attribute: Any) -> list[str]:
    kind = ts_type(attribute.annotation)
    if attribute.nullable and not kind.endswith(" | null") and kind != "unknown":
        kind = f"{kind} | null"
    optional = "" if attribute.required else "?"
    lines = _comment(attribute.doc, "  ") if attribute.doc else []
    return [*lines, f"  {attribute.name}{optional}: {kind};"]


def _alias(name: str, values: Sequence[str]) -> list[str]:
    quoted = [json.dumps(value) for value in values]
    line = f"export type {name} = {' | '.join(quoted)};"
    if len(line) <= 110:
        return [line]
    return [f"export type {name} =", *(f"  | {value}" for value in quoted[:-1]), f"  | {quoted[-1]};"]


HEADER = f"""// Generated from the OpenAPI schema (`/api/schema/`) by `clients/js/generate_ts_types.py`: do not edit it by hand;
// change the server (or the tables in clients/python/generate_types_tables.py) and run
// `{COMMAND}` from the repository's root.
//
// One interface per object of the API, describing its JSON as the server sends it: a field the server always
// sends is required, one it may leave out is optional (`?`), one it may send as null is `… | null`. Enum fields
// are unions of string literals (`PaymentStatus`, …); a value added by a newer server still arrives, as the
// string it is. Money is an integer in minor units next to a lowercase `currency`; times are ISO 8601 UTC
// strings (`new Date(value)` parses them)."""


def render(schema: Mapping[str, Any]) -> str:
    """The text of src/types.ts for this schema (needs Django set up: some enum values are the server's)."""
    python = load_python_generator()
    generator = python.Generator(schema)
    generator.check_coverage()
    names = {cls.name for cls in python.CLASSES}
    for name in JS_CLASS_DOCS:
        if name not in names:
            raise python.SchemaError(
                f"JS_CLASS_DOCS: {name} is no longer a class of CLASSES: drop its entry."
            )
    bodies: list[list[str]] = []
    for cls in python.CLASSES:
        # Python moves a few wire fields behind properties (`Event.object`); the interfaces keep every field.
        attributes = generator.attributes(dataclasses.replace(cls, exclude=()))
        lines: list[str] = []
        if cls.section:
            lines += [f"// {cls.section}", ""]
        doc = JS_CLASS_DOCS.get(cls.name) or python.CLASS_DOCS.get(cls.name)
        if doc:
            lines += _comment(doc, "")
        lines.append(f"export interface {cls.name} {{")
        for attribute in attributes:
            lines += _property(attribute)
        lines.append("}")
        bodies.append(lines)
    head = [HEADER, "", "// Enums: the values each enum field may have (a newer server may send others)", ""]
    for name, values in sorted(generator.aliases.items()):
        head += _alias(name, values)
    return "\n".join(head) + "\n\n" + "\n\n".join("\n".join(lines) for lines in bodies) + "\n"


def stale_message(current: str, expected: str) -> str:
    shown = TYPES_PATH.relative_to(REPO_ROOT)
    return str(load_python_generator().stale_report(shown, COMMAND, current, expected))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only check that src/types.ts is up to date")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    python = load_python_generator()
    try:
        expected = render(python.served_schema())
    except python.SchemaError as exc:
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
