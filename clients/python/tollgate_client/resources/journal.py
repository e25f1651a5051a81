"""The project's double-entry journal, read as a stream for a bookkeeping system."""

from __future__ import annotations

from datetime import date, datetime

from tollgate_client._transport import Transport
from tollgate_client.pagination import StreamPage
from tollgate_client.resources._base import Resource
from tollgate_client.types import JournalEntry


class JournalEntries(Resource):
    def list(
        self,
        *,
        after: str | None = None,
        limit: int | None = None,
        kind: str | None = None,
        effective_from: str | date | datetime | None = None,
        effective_to: str | date | datetime | None = None,
    ) -> StreamPage[JournalEntry]:
        """Journal entries, oldest posting first, each with its `lines` (debit or credit in minor units, with the
        account's code and name). `after`: the `next` of a previous page (None: from the first entry); `limit`
        1–500, default 100; `kind` one movement's entries; `effective_from`/`effective_to` [from, to) on
        `effective_at` (a date is its midnight UTC, a naive datetime UTC). The stream trails by a minute, so an
        entry committed late is never skipped: keep the last page's `next` and ask again later for what follows
        (`auto_paging_iter()` reads every page there is now)."""
        params = {
            "after": after,
            "limit": limit,
            "kind": kind,
            "effective_from": _moment(effective_from),
            "effective_to": _moment(effective_to),
        }
        return self._stream(JournalEntry, "/journal/entries", params)


class Journal:
    """`journal.entries`: the double-entry journal of the project's money (every movement mirrored from
    Stripe), as a stream."""

    def __init__(self, transport: Transport) -> None:
        self.entries = JournalEntries(transport)


def _moment(value: str | date | datetime | None) -> str | None:
    return value.isoformat() if isinstance(value, date) else value
