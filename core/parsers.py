"""The API's JSON parser: DRF's, refusing what PostgreSQL or Python would fail on later with a 500.

- Nesting deeper than `MAX_JSON_DEPTH` (Python's decoder recurses once per level: 5,000 levels exhaust its stack).
  The depth is measured on the raw text before decoding, with strings blanked out, in linear time.
- A NUL character (`\\u0000`) in any string or key: PostgreSQL's text and jsonb cannot hold it.
"""

import io
import re
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_JSON_DEPTH = 32  # Tollgate's deepest body (a cart's items with metadata) is 4 levels
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth_bound(raw: bytes) -> int:
    """A quick estimate of the nesting depth that ignores strings (C-speed `translate`, then one pass over the
    brackets alone). Brackets inside strings can only make it wrong when they are unbalanced; `JSONParser`
    then measures exactly (`json_depth`) whenever the estimate is over the limit."""
    depth = deepest = 0
    for char in raw.translate(None, _NOT_BRACKETS):
        if char in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (malformed text: what it would reach)."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        if json_depth_bound(raw) > MAX_JSON_DEPTH and json_depth(raw) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError as exc:
            # Strings hid the real depth from the estimate: refused all the same.
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.") from exc
        # A NUL can only reach a decoded string as the escape \u0000: no such escape, no walk over the data.
        if b"\\u0000" in raw and has_nul(data):
            raise ParseError("Strings must not contain NUL characters (\\u0000).")
        return data
