"""Wire layer, inbound: Stripe's form encoding (``a[b][0][c]=v``, ``expand[]=x``) decoded into nested Python
values, and :class:`Params`, the typed accessor handlers use to read them.

Every accessor raises the error Stripe would (``Missing required param``, ``Invalid integer``,
``Received unknown parameter``) naming the full bracketed param, so handlers never format errors themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from stripe_emulator.core.errors import (
    InvalidRequestError,
    ParameterInvalid,
    ParameterMissing,
    ParameterUnknown,
)

_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART_RE = re.compile(r"\[([^\[\]]*)\]")

# Under these keys the children are user-chosen names, even digit-only ones, never list indices.
_FREE_FORM_KEYS = frozenset({"metadata"})

_APPEND = object()


def decode_form(raw: str | bytes) -> dict[str, Any]:
    """Decode a form body or query string into nested dicts and lists.

    ``a[]=x`` appends, ``a[0]=x`` indexes, ``a[k]=x`` nests. Values stay strings: only the handler knows
    whether ``"10"`` is an integer or a name.
    """
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        match = _KEY_RE.match(key)
        if not match:
            raise InvalidRequestError(f"Invalid parameter name: {key}", param=key)
        parts: list[Any] = [match.group(1)]
        parts += [p if p != "" else _APPEND for p in _PART_RE.findall(match.group(2))]
        _assign(root, parts, value, key)
    # The top level is always a hash of param names, even if every name is a digit.
    return {k: _listify(v, k) for k, v in root.items()}


def _assign(node: dict[str, Any], parts: list[Any], value: str, full_key: str) -> None:
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part is _APPEND:
            # ``a[]`` is stored under synthetic increasing indices, then listified like ``a[0]``.
            part = f"{len(node):06d}"
        if last:
            node[part] = value
            return
        child = node.get(part)
        if not isinstance(child, dict):
            if child is not None:
                raise InvalidRequestError(
                    f"Invalid parameter: {full_key} conflicts with another", param=full_key
                )
            child = {}
            node[part] = child
        node = child


def _listify(node: Any, parent: str | None) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v, k) for k, v in node.items()}
    if parent not in _FREE_FORM_KEYS and converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def decode_body(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """Stripe's v1 API takes form bodies; JSON is accepted too for hand-written test clients."""
    if not raw:
        return {}
    if content_type and content_type.split(";")[0].strip() == "application/json":
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise InvalidRequestError("Invalid JSON body.") from exc
        if not isinstance(data, dict):
            raise InvalidRequestError("Invalid JSON body: expected an object.")
        return {str(k): _stringify(v) for k, v in data.items()}
    return decode_form(raw)


def _stringify(value: Any) -> Any:
    # A JSON client's ``true``/``12`` must parse exactly like the form's ``"true"``/``"12"``.
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value) if not isinstance(value, str) else value


class Params:
    """Read-only typed view over decoded params (or a nested part of them, see :meth:`sub`).

    ``has(name)`` distinguishes *absent* from *sent empty*: in Stripe an empty string unsets a field, so
    ``string("description")`` returns ``None`` for both, and update handlers check ``has`` first.
    """

    def __init__(self, data: dict[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}[{key}]" if self.prefix else key

    # -- shape ---------------------------------------------------------------------------------------------

    def only(self, *allowed: str) -> None:
        """Reject any param outside ``allowed`` (``expand`` is always allowed at top level)."""
        permitted = set(allowed) | ({"expand"} if not self.prefix else set())
        for key in self.data:
            if key not in permitted:
                raise ParameterUnknown(self.name(key))

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def sub(self, key: str, *, required: bool = False) -> Params | None:
        """A nested hash param such as ``recurring[...]``; ``None`` when absent or sent as ``""``."""
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise ParameterMissing(self.name(key))
            return None
        if not isinstance(value, dict):
            raise InvalidRequestError(
                f"Invalid object: {self.name(key)} must be a hash of parameters.",
                code="parameter_invalid_empty",
                param=self.name(key),
            )
        return Params(value, self.name(key))

    # -- scalars -------------------------------------------------------------------------------------------

    def string(self, key: str, *, required: bool = False, max_length: int = 5000) -> str | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise ParameterMissing(self.name(key))
            return None
        if not isinstance(value, str):
            raise ParameterInvalid(f"Invalid string: {self.name(key)}", param=self.name(key))
        if len(value) > max_length:
            raise ParameterInvalid(
                f"Invalid string: {value[:20]}...; must be at most {max_length} characters",
                param=self.name(key),
            )
        return value

    def integer(
        self, key: str, *, required: bool = False, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise ParameterMissing(self.name(key))
            return None
        if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
            raise ParameterInvalid(
                f"Invalid integer: {value}", param=self.name(key), code="parameter_invalid_integer"
            )
        number = int(value)
        if minimum is not None and number < minimum:
            raise ParameterInvalid(
                f"This value must be greater than or equal to {minimum}.",
                param=self.name(key),
                code="parameter_invalid_integer",
            )
        if maximum is not None and number > maximum:
            raise ParameterInvalid(
                f"This value must be less than or equal to {maximum}.",
                param=self.name(key),
                code="parameter_invalid_integer",
            )
        return number

    def boolean(self, key: str, *, required: bool = False) -> bool | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise ParameterMissing(self.name(key))
            return None
        if value in ("true", "True", "1"):
            return True
        if value in ("false", "False", "0"):
            return False
        raise ParameterInvalid(
            f"Invalid boolean: {value}", param=self.name(key), code="parameter_invalid_boolean"
        )

    def enum(self, key: str, choices: Iterable[str], *, required: bool = False) -> str | None:
        value = self.string(key, required=required)
        if value is None:
            return None
        options = list(choices)
        if value not in options:
            listed = ", ".join(options[:-1]) + (f", or {options[-1]}" if len(options) > 1 else options[0])
            raise ParameterInvalid(f"Invalid {key}: must be one of {listed}", param=self.name(key))
        return value

    def currency(self, key: str = "currency", *, required: bool = False) -> str | None:
        value = self.string(key, required=required)
        if value is None:
            return None
        value = value.lower()
        if not re.fullmatch(r"[a-z]{3}", value):
            raise ParameterInvalid(f"Invalid currency: {value}.", param=self.name(key))
        return value

    def timestamp(self, key: str, *, required: bool = False) -> int | None:
        return self.integer(key, required=required, minimum=0)

    # -- collections ---------------------------------------------------------------------------------------

    def strings(self, key: str, *, max_items: int | None = None) -> list[str] | None:
        """A list param (``key[]=a`` or ``key[0]=a``). A single scalar is accepted as a one-item list."""
        value = self.data.get(key)
        if value is None:
            return None
        if value == "":
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ParameterInvalid(f"Invalid array: {self.name(key)}", param=self.name(key))
        if max_items is not None and len(value) > max_items:
            raise ParameterInvalid(
                f"Invalid array: {self.name(key)} must contain at most {max_items} items.",
                param=self.name(key),
            )
        return list(value)

    def hashes(self, key: str) -> list[Params] | None:
        """A list of hashes (``line_items[0][price]=…``)."""
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ParameterInvalid(f"Invalid array: {self.name(key)}", param=self.name(key))
        return [Params(v, f"{self.name(key)}[{i}]") for i, v in enumerate(value)]

    def expand(self) -> list[str]:
        return self.strings("expand") or []

    def range_filter(self, key: str) -> dict[str, int] | None:
        """``created=123`` or ``created[gte]=…&created[lt]=…`` as ``{"gte": …}``; exact value → ``eq``."""
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            exact = self.timestamp(key)
            assert exact is not None
            return {"eq": exact}
        sub = self.sub(key)
        assert sub is not None
        sub.only("gt", "gte", "lt", "lte")
        bounds: dict[str, int] = {}
        for op in ("gt", "gte", "lt", "lte"):
            bound = sub.timestamp(op)
            if bound is not None:
                bounds[op] = bound
        return bounds


def in_range(value: int, bounds: dict[str, int] | None) -> bool:
    if not bounds:
        return True
    checks = {
        "eq": lambda b: value == b,
        "gt": lambda b: value > b,
        "gte": lambda b: value >= b,
        "lt": lambda b: value < b,
        "lte": lambda b: value <= b,
    }
    return all(checks[op](bound) for op, bound in bounds.items())


def parse_metadata(params: Params, key: str = "metadata") -> dict[str, str | None] | None:
    """The validated metadata hash sent, with keys sent as ``""`` mapped to ``None`` (delete). ``None`` when
    metadata was not sent or was sent as ``""`` (which :func:`merge_metadata` treats as "clear all")."""
    if not params.has(key):
        return None
    value = params.raw(key)
    if value == "":
        return None
    if not isinstance(value, dict):
        raise ParameterInvalid("Invalid metadata: must be a hash of key-value pairs.", param=params.name(key))
    if len(value) > 50:
        raise ParameterInvalid("Invalid metadata: you can specify up to 50 keys.", param=params.name(key))
    changes: dict[str, str | None] = {}
    for k, v in value.items():
        if not isinstance(v, str):
            raise ParameterInvalid(f"Invalid metadata value for {k}: must be a string.", param=f"{key}[{k}]")
        if len(k) > 40:
            raise ParameterInvalid("Metadata keys must be at most 40 characters.", param=f"{key}[{k}]")
        if len(v) > 500:
            raise ParameterInvalid("Metadata values must be at most 500 characters.", param=f"{key}[{k}]")
        changes[k] = v if v != "" else None
    return changes


def merge_metadata(current: dict[str, str], params: Params, key: str = "metadata") -> dict[str, str]:
    """Stripe's metadata update: merge keys, drop keys sent as ``""``, clear everything on ``metadata=""``."""
    if not params.has(key):
        return dict(current)
    if params.raw(key) == "":
        return {}
    changes = parse_metadata(params, key) or {}
    merged = dict(current)
    for k, v in changes.items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = v
    return merged
