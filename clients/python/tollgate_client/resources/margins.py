"""What your customers were billed for their usage against what it cost you: the margins report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from tollgate_client.errors import APIError
from tollgate_client.pagination import Page
from tollgate_client.resources._base import Resource
from tollgate_client.types import Margin


class MarginPage(Page[Margin]):
    """The report's first `limit` rows, least profitable first. `has_more` says rows were left out; no page
    follows them (a report has no cursor): ask again with a larger `limit`, fewer groups or a narrower window."""

    def next_page(self) -> None:
        return None


class Margins(Resource):
    def list(
        self,
        *,
        start: str | date | datetime | None = None,
        end: str | date | datetime | None = None,
        group_by: Sequence[str] | str | None = None,
        customer: str | None = None,
        limit: int | None = None,
    ) -> MarginPage:
        """Per month (UTC) and currency, and per customer, feature and model as `group_by` names them (default
        all three; `[]` for none), the usage recorded in [`start`, `end`) (`?from=&to=`; default the current
        month so far): what it cost you (`cost_micros`, by your cost table), what the customer was billed for it
        (`billed_micros`: the metered price's overage plus the credits it burned at what they were paid) and the
        margin, in micro-units of `currency`. `customer` (your id) keeps only theirs (unknown →
        `NotFoundError`); `limit` 1–1000, default 100."""
        groups = group_by if group_by is None or isinstance(group_by, str) else ",".join(group_by)
        params = {"from": _moment(start), "to": _moment(end), "group_by": groups, "customer": customer}
        answer = self._transport.request("GET", "/margins", params={**params, "limit": limit})
        if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
            raise APIError("Expected a list object from GET /margins.")

        def fetch(starting_after: str) -> Page[Margin]:
            raise APIError("A margins report has no next page.")  # never called: next_page() is None

        return MarginPage(
            data=[Margin.from_dict(item) for item in answer["data"]],
            has_more=bool(answer.get("has_more")),
            raw=dict(answer),
            fetch=fetch,
        )


def _moment(value: str | date | datetime | None) -> str | None:
    return value.isoformat() if isinstance(value, date) else value
