"""Back-office lists that stay fast on large tables: a page never counts more rows than a cap.

Django's change list counts the whole filtered list for its paginator (`COUNT(*)`), and, unless
`show_full_result_count` is off, the whole unfiltered table a second time. On a table of customers, payments or
events that grows without end, both are scans on every page. `CappedCountPaginator` counts at most `COUNT_CAP` + 1
rows (`SELECT COUNT(*) FROM (… LIMIT n)`), so a page of a list of millions costs what a page of ten thousand does;
the pagination line then says "more than 10,000" (templates/admin/pagination.html), and search or a filter narrows
the list to an exact count.
"""

from functools import cached_property

from django.core.paginator import Paginator
from django.db.models import QuerySet

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        """The number of rows, or `cap` + 1 when there are more."""
        rows = self.object_list
        if isinstance(rows, QuerySet):
            # Unordered: counting the first rows of a sorted list would sort the whole table first.
            return int(rows.order_by()[: self.cap + 1].count())
        return min(len(rows), self.cap + 1)

    @property
    def capped(self) -> bool:
        """Whether the list holds more rows than were counted."""
        return self.count > self.cap

    @property
    def cap_label(self) -> str:
        return f"{self.cap:,}"
