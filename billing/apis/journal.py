"""`GET /journal/entries`: the project's double-entry journal (billing.models.journal) as a stream, oldest posting
first, by an opaque cursor; it trails the writers by `JOURNAL_SETTLE`, so an entry committed late is never
skipped."""

from datetime import UTC, datetime
from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors
from billing.models import ACCOUNT_CODES, Account, EntryKind, JournalEntry
from core.base_api import BaseApi
from core.errors import InvalidRequest
from core.pagination import stream_cursor, stream_page, stream_position
from projects.authentication import request_project

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_CURSOR_LENGTH = 500
_SETTLE_SECONDS = int(selectors.JOURNAL_SETTLE.total_seconds())
_TIME_HELP = (
    "ISO 8601: a date and time (`2026-03-01T12:00:00Z`; UTC unless it names an offset, whose `+` must be "
    "URL-encoded as %2B) or a date (`2026-03-01`, its midnight UTC)."
)


@extend_schema_field(
    {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]}
)
class InstantField(serializers.Field):  # type: ignore[type-arg]
    """An instant in UTC from ISO 8601 (a date: its midnight; no offset: UTC). Year 1 or 9999 moved across
    midnight by its offset is before or after any entry, not an error."""

    default_error_messages = {"invalid": _TIME_HELP}

    def to_internal_value(self, data: Any) -> datetime:
        try:
            value = datetime.fromisoformat(str(data))
        except ValueError:
            self.fail("invalid")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:
            return datetime.min.replace(tzinfo=UTC) if value.year == 1 else datetime.max.replace(tzinfo=UTC)


class JournalEntryQuery(serializers.Serializer[Any]):
    limit = serializers.IntegerField(
        min_value=1,
        max_value=MAX_LIMIT,
        default=DEFAULT_LIMIT,
        help_text=f"How many entries: 1 to {MAX_LIMIT}, default {DEFAULT_LIMIT}.",
    )
    after = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_CURSOR_LENGTH,
        help_text="The `next` of the previous page: the entries posted after it. Without it, from the first.",
    )
    kind = serializers.ChoiceField(
        choices=EntryKind.choices, required=False, help_text="Only the entries of this kind of movement."
    )
    effective_from = InstantField(
        required=False, help_text=f"Only the entries effective at or after this instant. {_TIME_HELP}"
    )
    effective_to = InstantField(
        required=False, help_text=f"Only the entries effective before this instant. {_TIME_HELP}"
    )


class JournalLineOutput(serializers.Serializer[Any]):
    account = serializers.ChoiceField(choices=Account.choices)
    code = serializers.CharField(help_text="The account's number in the chart of accounts (`1010` … `6300`).")
    name = serializers.CharField(help_text="The account's name (`Cash at Stripe`).")
    debit = serializers.IntegerField(
        help_text="Debited, in minor units of the entry's currency; 0 on a credit."
    )
    credit = serializers.IntegerField(
        help_text="Credited, in minor units of the entry's currency; 0 on a debit."
    )


class JournalEntryOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField(default="journal_entry")
    kind = serializers.ChoiceField(choices=EntryKind.choices, help_text="Which movement the entry posts.")
    source = serializers.CharField(  # type: ignore[assignment]  # a field named like Field.source
        help_text="The object moved: Stripe's (`in_…`, `re_…`, `cn_…`, `txn_…`), or Tollgate's payment (`pay_…`) "
        "for a payment and its disputes."
    )
    revision = serializers.IntegerField(
        help_text="The entry's number among its movement's (same `source` and `kind`): 1 posts the movement, "
        "each later one what changed since (a reversal, a correction)."
    )
    currency = serializers.CharField(help_text="Three-letter ISO code, lowercase, of every line.")
    effective_at = serializers.DateTimeField(
        help_text="When the movement happened as far as the books go: when Tollgate learnt of it, or Stripe's "
        "time for a fee."
    )
    posted_at = serializers.DateTimeField(help_text="When the entry was written: the stream's order.")
    lines = JournalLineOutput(many=True, help_text="In the chart's order; they add up to zero.")


def _entry(entry: JournalEntry) -> dict[str, Any]:
    lines = sorted(entry.lines.all(), key=lambda line: ACCOUNT_CODES[Account(line.account)])
    return {
        "id": entry.pk,
        "object": "journal_entry",
        "kind": entry.kind,
        "source": entry.source,
        "revision": entry.revision,
        "currency": entry.currency,
        "effective_at": entry.effective_at,
        "posted_at": entry.created_at,
        "lines": [
            {
                "account": line.account,
                "code": ACCOUNT_CODES[Account(line.account)],
                "name": Account(line.account).label,
                "debit": max(line.amount, 0),
                "credit": max(-line.amount, 0),
            }
            for line in lines
        ],
    }


def _query(request: Request) -> dict[str, Any]:
    query = JournalEntryQuery(data=request.query_params)
    if not query.is_valid():
        name, messages = next(iter(query.errors.items()))
        code = {"limit": "invalid_limit", "after": "invalid_cursor"}.get(name, "invalid_parameter")
        raise InvalidRequest(f"{name}: {messages[0]}", code=code, param=name)
    return dict(query.validated_data)


class JournalEntryListApi(BaseApi):
    @extend_schema(
        operation_id="journal_entries_list",
        summary="Stream the journal",
        description=(
            "The project's double-entry journal, one entry per money movement Tollgate mirrored from Stripe (an "
            "invoice issued or written off, a payment, a refund, a credit note, a dispute, a Stripe fee), each "
            "entry's lines adding up to zero, in minor units. Oldest posting first (`posted_at`, then `id`); "
            "entries are never changed or removed, a reversal is an entry of its own. Page on with `after` set "
            "to the answer's `next`; `has_more` is false once the stream is caught up, and `next` is still the "
            "place to come back to for what is posted later (null only while nothing was served). The stream "
            f"trails by {_SETTLE_SECONDS} seconds: an entry is served once it was posted that long ago, so an "
            "entry committed late (its transaction still open when a later one was read) is never skipped. "
            "Filters `kind`, and `effective_from`/`effective_to` ([from, to) on `effective_at`) keep the order. "
            "400 `invalid_cursor` for an `after` that is not a `next` of this list, `invalid_limit`, "
            "`invalid_parameter`."
        ),
        parameters=[JournalEntryQuery],
        responses=inline_serializer(
            name="JournalEntryList",
            fields={
                "object": serializers.CharField(default="list"),
                "data": JournalEntryOutput(many=True),
                "has_more": serializers.BooleanField(
                    help_text="More entries can be read now, after `next`; false once caught up."
                ),
                "next": serializers.CharField(
                    allow_null=True,
                    help_text="The cursor of this page's end: pass it as `after`, now for the next page or later "
                    "for what was posted since. Null only while nothing was served (no `after`, no entry).",
                ),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        query = _query(request)
        after = stream_position(query["after"], param="after") if query.get("after") else None
        entries = selectors.journal_entry_stream(
            project=request_project(request),
            kind=query.get("kind"),
            effective_from=query.get("effective_from"),
            effective_to=query.get("effective_to"),
        )
        rows, has_more = stream_page(entries, after=after, limit=query["limit"])
        end = (rows[-1].created_at, rows[-1].pk) if rows else after
        body = JournalEntryOutput([_entry(entry) for entry in rows], many=True).data
        return Response(
            {
                "object": "list",
                "data": body,
                "has_more": has_more,
                "next": stream_cursor(end) if end is not None else None,
            }
        )
