"""Erasing a person's data from stored JSON and text (issue #29, "privacy requests"): what counts as personal in
the payloads Tollgate keeps (Stripe's events, tenant events, idempotency answers, audit before/after), and the
scrub every app applies to its own rows (`backoffice.services.customer_erase` hands each the same `Erasure`).

Two rules, both irreversible (the values are replaced, never hashed):

- **By key.** Wherever a payload carries a person's details under a key that means them (`customer_email`,
  `billing_details`, `customer_details`, `shipping`, … and `email`, `name`, `phone`, `address`, `description`
  and the metadata values of a customer object, Stripe's or ours), the value becomes null (metadata values
  "[erased]"; Tollgate's own `tollgate_*` routing keys stay).
- **By value.** Any string holding the person's email or name (case-insensitive; a name shorter than
  `MIN_SUBSTRING` only as a whole string) has it replaced by "[erased]"; a string equal to one of `exact` (the
  tenant's user id, address lines seen at Stripe) is replaced by its replacement. One of `tokens` (the tenant's user
  id) is replaced wherever it stands as a whole token inside a longer string too: a delivery answer that echoes
  `{"customer":"user-7"}` as text, an audit row's "Customer user-7". Ids (`cus_…`, `pay_…`) are never rewritten
  by a substring: amounts, currencies, numbers, dates, statuses and ids stay what they were.
"""

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from django.db.models import Q, QuerySet

from core.models import AuditLogEntry, IdempotencyKey

ERASED = "[erased]"
MIN_SUBSTRING = 4
# An object id of Stripe's or ours: never rewritten by a substring match.
_ID = re.compile(r"^[a-z]{2,12}_[A-Za-z0-9_]{6,}$")
# Keys whose whole value is a person's details, in any object.
PERSONAL_KEYS = frozenset(
    {
        "customer_email",
        "customer_name",
        "customer_phone",
        "customer_address",
        "customer_shipping",
        "customer_details",
        "customer_tax_ids",
        "billing_details",
        "shipping_details",
        "shipping",
        "receipt_email",
    }
)
# Keys of a customer object (`"object": "customer"`) that are the person's.
CUSTOMER_KEYS = frozenset({"email", "name", "phone", "address", "description"})
# Tollgate's own routing keys in a Stripe customer's metadata: ids, not personal (the external id is rewritten
# by value like everywhere else).
ROUTING_METADATA = frozenset({"tollgate_project", "tollgate_customer"})


@dataclass
class Erasure:
    """What to remove: `substrings` (lowercase) are replaced wherever they appear in a string, `exact` (lowercase
    → replacement) only as whole strings, `tokens` (lowercase → replacement, at least `MIN_SUBSTRING` long) as
    whole strings and as whole tokens inside a string (not next to a letter, digit or one of `_-.@+`)."""

    substrings: set[str] = field(default_factory=set)
    exact: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        *,
        texts: Iterable[str],
        exact: dict[str, str] | None = None,
        tokens: dict[str, str] | None = None,
    ) -> "Erasure":
        erasure = cls(exact={k.lower(): v for k, v in (exact or {}).items() if k})
        for token, replacement in (tokens or {}).items():
            if len(token.strip()) >= MIN_SUBSTRING:
                erasure.tokens[token.strip().lower()] = replacement
            elif token:
                erasure.exact[token.lower()] = replacement
        for text in texts:
            erasure.add(text)
        return erasure

    def add(self, text: Any) -> None:
        """Adds a personal value: a substring when long enough to be one person's, else a whole string."""
        if not isinstance(text, str) or not text.strip():
            return
        value = text.strip().lower()
        if len(value) >= MIN_SUBSTRING and not _ID.match(value):
            self.substrings.add(value)
        else:
            self.exact.setdefault(value, ERASED)

    def learn(self, value: Any) -> None:
        """Adds every personal value a payload carries under a personal key (the address lines Stripe holds, a
        phone number), so that a copy of it elsewhere is found as well."""
        for text in personal_values(value):
            self.add(text)

    @property
    def needles(self) -> list[str]:
        """The strings to look for in a text column (what a row must contain to need the scrub)."""
        return sorted(self.substrings | set(self.tokens) | {k for k in self.exact if len(k) >= MIN_SUBSTRING})

    @property
    def json_needles(self) -> list[str]:
        """The same in a JSON column's text: the whole strings with their quotes, so a short one is found only
        as a value of its own."""
        return sorted(self.substrings | set(self.tokens) | {json.dumps(k) for k in self.exact})

    def text(self, value: str) -> str:
        """A string with the person's values replaced."""
        lowered = value.lower()
        if lowered in self.exact:
            return self.exact[lowered]
        if lowered in self.tokens:
            return self.tokens[lowered]
        if _ID.match(value):
            return value
        for token, replacement in self.tokens.items():
            if token in lowered:
                value = _token_pattern(token).sub(replacement, value)
                lowered = value.lower()
        for needle in self.substrings:
            if needle in lowered:
                value = re.sub(re.escape(needle), ERASED, value, flags=re.IGNORECASE)
                lowered = value.lower()
        return value

    def path(self, path: str) -> str:
        """A URL path whose segments are rewritten like strings (a segment may be the tenant's user id)."""
        parts = []
        for part in path.split("/"):
            text = unquote(part)
            parts.append(part if (new := self.text(text)) == text else quote(new, safe=""))
        return "/".join(parts)

    def json(self, value: Any) -> Any:
        """A JSON value with personal keys nulled and personal strings replaced (a new value; the input stays)."""
        if isinstance(value, dict):
            is_customer = value.get("object") == "customer"
            out: dict[str, Any] = {}
            for key, item in value.items():
                if key in PERSONAL_KEYS or (is_customer and key in CUSTOMER_KEYS):
                    out[key] = None if item not in ("", None) else item
                elif is_customer and key == "metadata" and isinstance(item, dict):
                    out[key] = {k: self.json(v) if k in ROUTING_METADATA else ERASED for k, v in item.items()}
                else:
                    out[self.text(key) if isinstance(key, str) else key] = self.json(item)
            return out
        if isinstance(value, list):
            return [self.json(item) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def _token_pattern(token: str) -> re.Pattern[str]:
    """`token` as a whole token: not inside a longer id, email, host or word (`user-7` is not in `user-77` nor in
    `user-7.example.com`; a sentence's full stop may follow it)."""
    return re.compile(rf"(?<![\w.@+-]){re.escape(token)}(?![\w@+-]|\.\w)", flags=re.IGNORECASE)


# The leaves of a personal value worth looking for elsewhere (a country or a state code is too common to be).
PERSONAL_LEAVES = frozenset({"email", "name", "phone", "line1", "line2", "city", "postal_code"})


def personal_values(value: Any, *, personal: bool = False, key: str = "") -> Iterable[str]:
    """The strings a JSON value holds under personal keys (see the module's docstring) that could identify the
    person if copied elsewhere: names, emails, phones, address lines, cities and postal codes."""
    if isinstance(value, dict):
        is_customer = value.get("object") == "customer"
        for name, item in value.items():
            inner = personal or name in PERSONAL_KEYS or (is_customer and name in CUSTOMER_KEYS)
            yield from personal_values(item, personal=inner, key=name)
    elif isinstance(value, list):
        for item in value:
            yield from personal_values(item, personal=personal, key=key)
    elif (
        personal and isinstance(value, str) and key in PERSONAL_LEAVES and len(value.strip()) >= MIN_SUBSTRING
    ):
        yield value


def matching(fields: Iterable[str], needles: Iterable[str]) -> Q:
    """Rows where any of the fields contains any of the needles (case-insensitive; JSON fields as their text)."""
    query = Q(pk__in=[])
    for name in fields:
        for needle in needles:
            query |= Q(**{f"{name}__icontains": needle})
    return query


def scrub_rows(
    queryset: QuerySet[Any],
    *,
    json_fields: Iterable[str] = (),
    text_fields: Iterable[str] = (),
    erasure: Erasure,
) -> int:
    """Rewrites the rows' JSON and text fields through the erasure, in batches (bounded memory); returns how many
    rows changed. The caller holds the transaction."""
    json_fields, text_fields = tuple(json_fields), tuple(text_fields)
    changed = 0
    for row in _batches(queryset.only("pk", *json_fields, *text_fields)):
        updates: dict[str, Any] = {}
        for name in json_fields:
            value = getattr(row, name)
            if value is not None and (new := erasure.json(value)) != value:
                updates[name] = new
        for name in text_fields:
            value = getattr(row, name)
            if value and (new := erasure.text(value)) != value:
                updates[name] = new
        if updates:
            type(row)._default_manager.filter(pk=row.pk).update(**updates)
            changed += 1
    return changed


def _batches(queryset: QuerySet[Any]) -> Iterator[Any]:
    """The rows in primary-key order, SCRUB_BATCH at a time: bounded memory, and no cursor left open over a
    table being written (SQLite's reads see a connection's own writes)."""
    last = None
    while True:
        page = queryset.order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        rows = list(page[:SCRUB_BATCH])
        yield from rows
        if len(rows) < SCRUB_BATCH:
            return
        last = rows[-1].pk


SCRUB_BATCH = 500


def audit_entries_anonymise(*, project_id: str, target_ids: Iterable[str], erasure: Erasure) -> int:
    """The project's audit rows about the person (by target) or quoting them: the who/what/when stay, the
    person's values in the target's name, the reason and before/after go."""
    rows = AuditLogEntry.objects.filter(project_id=project_id).filter(
        Q(target_id__in=list(target_ids))
        | matching(("target_repr", "reason"), erasure.needles)
        | matching(("before", "after"), erasure.json_needles)
    )
    return scrub_rows(
        rows, json_fields=("before", "after"), text_fields=("target_repr", "reason"), erasure=erasure
    )


def idempotency_records_anonymise(*, owner: str, erasure: Erasure) -> int:
    """The caller's stored answers (kept a day for replays) that quote the person: the JSON body is scrubbed
    like any payload, a body that is not JSON is replaced by an empty one; the path too (it may hold the id)."""
    changed = 0
    needles = [needle.encode() for needle in erasure.needles]
    for record in (
        IdempotencyKey.objects.filter(owner=owner)
        .only("pk", "path", "response_body")
        .iterator(chunk_size=SCRUB_BATCH)
    ):
        body = bytes(record.response_body or b"")
        lowered = body.lower()
        updates: dict[str, Any] = {}
        if any(needle in lowered for needle in needles):
            try:
                updates["response_body"] = json.dumps(erasure.json(json.loads(body))).encode()
            except ValueError:
                updates["response_body"] = b"{}"
        if (path := erasure.path(record.path)) != record.path:
            updates["path"] = path
        if updates:
            IdempotencyKey.objects.filter(pk=record.pk).update(**updates)
            changed += 1
    return changed
