"""The base of every result: a frozen dataclass built from the server's JSON, tolerant of fields it does not know.

Known fields become typed attributes (nested objects and lists of objects are built too, following the type
hints); a field missing from the JSON gets its default, or None (an empty list for a list) when it has none.
The whole JSON stays in `raw`, and the fields this version of the client does not know are in `extra`, so a
newer server never breaks an older client.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

_T = TypeVar("_T", bound="TollgateObject")
_HINTS: dict[type, dict[str, Any]] = {}  # resolved type hints per class (a benign race: same value)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TollgateObject:
    raw: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls: type[_T], data: Mapping[str, Any]) -> _T:
        hints = _hints(cls)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name == "raw" or not field.init:
                continue
            if field.name in data:
                values[field.name] = _convert(hints[field.name], data[field.name])
            elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                # A field the schema says is always sent, missing (an older server, a hand-written test
                # payload): None, or an empty list, rather than a TypeError out of the client.
                values[field.name] = _missing(hints[field.name])
        return cls(raw=dict(data), **values)

    @property
    def extra(self) -> dict[str, Any]:
        """Fields the server sent that this version of the client has no attribute for."""
        known = {field.name for field in dataclasses.fields(self)}
        return {
            key: value for key, value in self.raw.items() if key not in known and not hasattr(type(self), key)
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON object as the server sent it."""
        return dict(self.raw)


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _convert(hint: Any, value: Any) -> Any:
    """Builds nested objects where the hint asks for them; everything else is kept as the JSON gave it."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        for arm in typing.get_args(hint):
            if arm is not type(None) and _wants_object(arm):
                return _convert(arm, value)
        return value
    if origin is list and isinstance(value, list):
        (item_hint,) = typing.get_args(hint) or (Any,)
        return [_convert(item_hint, item) for item in value]
    if isinstance(hint, type) and issubclass(hint, TollgateObject) and isinstance(value, Mapping):
        return hint.from_dict(value)
    return value


def _missing(hint: Any) -> Any:
    return [] if typing.get_origin(hint) is list else None


def _wants_object(hint: Any) -> bool:
    if isinstance(hint, type) and issubclass(hint, TollgateObject):
        return True
    return typing.get_origin(hint) is list
