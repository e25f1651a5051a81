"""A tool's arguments checked against its JSON Schema: the subset the tools' schemas use (an object of named
properties, none other; strings, integers, booleans, nullable values and enums, with their bounds), checked here
because the product installs no JSON Schema library. A schema keyword outside that subset is an error in the tool,
raised as soon as it is checked."""

from datetime import datetime
from typing import Any

_SUPPORTED = frozenset(
    {
        "type",
        "description",
        "properties",
        "required",
        "additionalProperties",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "enum",
        "format",
        "default",
    }
)
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "array": (list,),
}


class ArgumentError(ValueError):
    """The arguments do not match the schema: `param` names the first argument at fault (None: the whole)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        self.param = param
        super().__init__(message)


def _is(value: Any, kind: str) -> bool:
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False  # JSON's true is no number, though Python's bool is an int
    return isinstance(value, _TYPES[kind])


def _check(schema: dict[str, Any], value: Any, name: str) -> None:
    unknown = set(schema) - _SUPPORTED
    if unknown:
        raise NotImplementedError(f"Schema keyword {sorted(unknown)[0]!r} is not checked.")
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, kind) for kind in kinds):
            raise ArgumentError(f"{name}: must be {' or '.join(kinds)}.", name)
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(repr(choice) for choice in schema["enum"])
        raise ArgumentError(f"{name}: must be one of {choices}.", name)
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise ArgumentError(f"{name}: at least {schema['minLength']} characters.", name)
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise ArgumentError(f"{name}: at most {schema['maxLength']} characters.", name)
        if schema.get("format") == "date-time":
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                moment = None
            if moment is None or moment.tzinfo is None:
                raise ArgumentError(f"{name}: an ISO 8601 date and time with its offset.", name)
    if _is(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            raise ArgumentError(f"{name}: at least {schema['minimum']}.", name)
        if "maximum" in schema and value > schema["maximum"]:
            raise ArgumentError(f"{name}: at most {schema['maximum']}.", name)


def _has_nul(value: Any) -> bool:
    """Whether a NUL character is in `value`: a string, or any name or string of an object or array, nested."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(str(name)) or _has_nul(item) for name, item in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


def arguments_check(schema: dict[str, Any], arguments: Any) -> None:
    """Raises ArgumentError unless `arguments` is an object that `schema` (an object schema) accepts. No name or
    string anywhere in them may hold a NUL character (`\\u0000`), which no tool takes and PostgreSQL cannot store."""
    if not isinstance(arguments, dict):
        raise ArgumentError("The arguments must be a JSON object.")
    for name, value in arguments.items():
        if _has_nul(str(name)) or _has_nul(value):
            shown = str(name).replace("\x00", "\\u0000")
            raise ArgumentError(f"{shown}: must not contain the NUL character (\\u0000).", shown)
    properties: dict[str, Any] = schema.get("properties", {})
    if schema.get("additionalProperties") is False:
        for name in arguments:
            if name not in properties:
                raise ArgumentError(f"{name}: unknown argument.", str(name))
    for name in schema.get("required", ()):
        if name not in arguments:
            raise ArgumentError(f"{name}: required.", name)
    for name, value in arguments.items():
        if name in properties:
            _check(properties[name], value, name)
