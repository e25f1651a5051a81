"""Stripe's search query language (``GET /v1/<resource>/search?query=…``) and the ``search_result`` envelope.

A query is up to 10 clauses ``field operator value`` joined by spaces or ``AND`` / ``OR`` (case-insensitive,
never both in one query, no parentheses); ``-`` before a clause negates it. Each resource declares its fields:
``string`` fields (``:`` exact and ``~`` substring of at least 3 characters, both case-insensitive; quoted
values), ``numeric`` fields (``:`` ``>`` ``<`` ``>=`` ``<=``; quotes optional), and always
``metadata["key"]`` (``:`` a quoted value, or ``null`` for an absent key). Everything else is a 400 naming
``query``. Results come newest first; ``page`` continues after the last object of the previous page.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.params import Params
from stripe_emulator.core.render import DEFAULT_LIMIT, MAX_LIMIT, list_position, render
from stripe_emulator.core.store import StripeObject

if TYPE_CHECKING:
    from stripe_emulator.core.account import Account

MAX_CLAUSES = 10
MIN_SUBSTRING = 3
OPERATORS = (">=", "<=", ":", "~", ">", "<")
FIELD_OPERATORS = {"string": (":", "~"), "numeric": (":", ">", "<", ">=", "<="), "metadata": (":",)}
_FIELD = re.compile(r"-?([A-Za-z_][A-Za-z0-9_.]*)")
_METADATA_KEY = re.compile(r"\[\s*(['\"])((?:\\.|(?!\1).)*)\1\s*\]")
_CONNECTOR = re.compile(r"\s+(AND|OR)\s+|\s+", re.IGNORECASE)
_BARE = re.compile(r"[^\s'\"]+")
_QUOTED = re.compile(r"(['\"])((?:\\.|(?!\1).)*)\1")


@dataclass(frozen=True)
class Clause:
    field: str  # "metadata" for metadata clauses
    key: str | None  # the metadata key
    operator: str
    value: str | int | None  # None: ``null``
    negated: bool

    def matches(self, obj: StripeObject) -> bool:
        return self._test(obj) != self.negated

    def _test(self, obj: StripeObject) -> bool:
        if self.field == "metadata":
            current = (obj.get("metadata") or {}).get(self.key)
            return current is None if self.value is None else current == self.value
        current = obj.get(self.field)
        if current is None:
            return False
        if isinstance(self.value, int):
            return _compare(int(current), self.operator, self.value)
        text, wanted = str(current).lower(), str(self.value).lower()
        return wanted in text if self.operator == "~" else text == wanted


def _compare(current: int, operator: str, value: int) -> bool:
    checks: dict[str, Callable[[int, int], bool]] = {
        ":": lambda a, b: a == b,
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
    }
    return checks[operator](current, value)


def _refuse(message: str) -> InvalidRequestError:
    return InvalidRequestError(message, param="query")


def _unparsable() -> InvalidRequestError:
    return _refuse(
        'We were unable to parse your search query. Try using the format `metadata["key"]:"value"` to '
        'query for metadata or `key:"value"` to query for other fields.'
    )


class _Parser:
    def __init__(self, query: str, fields: Mapping[str, str], resource: str) -> None:
        self.query, self.fields, self.resource = query, fields, resource
        self.at = 0

    def parse(self) -> tuple[list[Clause], str]:
        """The clauses and how they combine (``AND`` | ``OR``)."""
        clauses: list[Clause] = []
        connectors: set[str] = set()
        self.at = len(self.query) - len(self.query.lstrip())
        while True:
            clauses.append(self._clause())
            if self.at >= len(self.query.rstrip()):
                break
            joined = _CONNECTOR.match(self.query, self.at)
            if joined is None:
                raise _unparsable()
            connectors.add((joined.group(1) or "AND").upper())
            self.at = joined.end()
        if len(connectors) > 1:
            raise _refuse("A search query can combine clauses with AND or with OR, not both.")
        if len(clauses) > MAX_CLAUSES:
            raise _refuse(f"A search query can have at most {MAX_CLAUSES} clauses.")
        return clauses, connectors.pop() if connectors else "AND"

    def _clause(self) -> Clause:
        found = _FIELD.match(self.query, self.at)
        if found is None:
            raise _unparsable()
        negated, field = found.group(0).startswith("-"), found.group(1)
        self.at = found.end()
        key = self._metadata_key() if field == "metadata" else None
        kind = "metadata" if field == "metadata" else self.fields.get(field)
        if kind is None:
            raise _refuse(
                f"Field `{field}` is an unsupported search field for resource `{self.resource}`. See "
                f"https://stripe.com/docs/search#query-fields-for-{self.resource} for a list of supported fields."
            )
        operator = next((op for op in OPERATORS if self.query.startswith(op, self.at)), None)
        if operator is None:
            raise _unparsable()
        if operator not in FIELD_OPERATORS[kind]:
            raise _refuse(f"Field `{field}` does not support the `{operator}` operator.")
        self.at += len(operator)
        return Clause(field, key, operator, self._value(kind, field, operator), negated)

    def _metadata_key(self) -> str:
        found = _METADATA_KEY.match(self.query, self.at)
        if found is None:
            raise _unparsable()
        self.at = found.end()
        return _unescape(found.group(2))

    def _value(self, kind: str, field: str, operator: str) -> str | int | None:
        quoted = _QUOTED.match(self.query, self.at)
        bare = None if quoted else _BARE.match(self.query, self.at)
        if quoted is None and bare is None:
            raise _unparsable()
        found = quoted or bare
        assert found is not None
        self.at = found.end()
        text = _unescape(quoted.group(2)) if quoted else found.group(0)
        if kind == "numeric":
            if not re.fullmatch(r"-?\d+", text):
                raise _refuse(f"Field `{field}` takes a number, not `{text}`.")
            return int(text)
        if kind == "metadata" and bare is not None and text == "null":
            return None
        if bare is not None:
            raise _refuse(f'String values must be quoted: {field}{operator}"{text}".')
        if operator == "~" and len(text) < MIN_SUBSTRING:
            raise _refuse(f"A substring search (`~`) needs at least {MIN_SUBSTRING} characters.")
        return text


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def search(
    objects: Sequence[StripeObject], query: str, *, fields: Mapping[str, str], resource: str
) -> list[StripeObject]:
    """The ``objects`` (newest first) matching ``query``; ``fields`` maps field names to ``string`` or
    ``numeric``; ``resource`` names the endpoint in errors (``customers``)."""
    if not query.strip():
        raise _refuse("The search query cannot be empty.")
    clauses, connector = _Parser(query, fields, resource).parse()
    combine = all if connector == "AND" else any
    return [obj for obj in objects if combine(clause.matches(obj) for clause in clauses)]


def _page_token(obj: StripeObject) -> str:
    return base64.urlsafe_b64encode(str(obj["id"]).encode()).decode().rstrip("=")


def _after_page(account: Account, token: str, object_type: str) -> tuple[int, int]:
    try:
        object_id = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        object_id = ""
    cursor = account.store.find(object_id) if object_id else None
    if cursor is None or cursor["object"] != object_type:
        raise InvalidRequestError(f"Invalid page token: {token}", param="page")
    return list_position(cursor)


def render_search_result(
    account: Account, found: Sequence[StripeObject], params: Params, *, url: str, object_type: str
) -> dict[str, Any]:
    """One page of ``found`` as a ``search_result``: ``limit`` (1–100, default 10), ``page`` (the previous
    answer's ``next_page``), ``expand[]=data.…``, and ``total_count`` only with ``expand[]=total_count``."""
    limit = params.integer("limit", minimum=1, maximum=MAX_LIMIT) or DEFAULT_LIMIT
    token = params.string("page")
    rest = list(found)
    if token is not None:
        after = _after_page(account, token, object_type)
        rest = [obj for obj in rest if list_position(obj) < after]
    page, has_more = rest[:limit], len(rest) > limit
    expand = params.expand()
    result: dict[str, Any] = {
        "object": "search_result",
        "data": [
            render(account, obj, [p[len("data.") :] for p in expand if p.startswith("data.")]) for obj in page
        ],
        "has_more": has_more,
        "next_page": _page_token(page[-1]) if has_more else None,
        "url": url,
    }
    if "total_count" in expand:
        result["total_count"] = len(found)
    return result
