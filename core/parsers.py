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
        if json_depth(raw) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
        data = super().parse(io.BytesIO(raw), media_type, parser_context)
        if has_nul(data):
            raise ParseError("Strings must not contain NUL characters (\\u0000).")
        return data
