"""Back-office lists that stay fast on large tables: a page never counts more rows than a cap.

Django's change list counts the whole filtered list for its paginator (`COUNT(*)`), and, unless
`show_full_result_count` is off, the whole unfiltered table a second time. On a table of customers, payments or
events that grows without end, both are scans on every page. `CappedCountPaginator` counts at most `COUNT_CAP` + 1
rows (`SELECT COUNT(*) FROM (… LIMIT n)`), so a page of a list of millions costs what a page of ten thousand does;
the pagination line then says "more than 10,000" (templates/admin/pagination.html), and search or a filter narrows
the list to an exact count. `LargeListAdmin` gives a ModelAdmin that paginator, and `known_values_filter` a filter
whose choices come from the code or a small table instead of `SELECT DISTINCT` over the large one. Such lists have
no `date_hierarchy` (its bar reads every row's date); their date filter (today, past 7 days, …) reads nothing.
"""

from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any, ClassVar

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        """The number of rows, or `cap` + 1 when there are more."""
        rows = self.object_list
        if isinstance(rows, QuerySet):
            # Unordered, and only the key: counting the first rows of a sorted list would sort the whole table
            # first, and the list's annotations (a project's slug, say) would be computed for each counted row.
            return int(rows.order_by().values("pk")[: self.cap + 1].count())
        return min(len(rows), self.cap + 1)

    @property
    def capped(self) -> bool:
        """Whether the list holds more rows than were counted."""
        return self.count > self.cap

    @property
    def cap_label(self) -> str:
        return f"{self.cap:,}"


class LargeListAdmin:
    """Mixed into the ModelAdmin of a table that grows without end (payments, events, usage, the audit log),
    before the ModelAdmin: its pages count at most `cap` + 1 rows, once, and offer no per-filter counts (each would
    count the table)."""

    paginator: ClassVar[type] = CappedCountPaginator
    show_full_result_count: ClassVar[bool] = False
    show_facets: ClassVar[admin.ShowFacets] = admin.ShowFacets.NEVER


def known_values_filter(
    field: str, title: str, values: Callable[[], Iterable[str]], label: Callable[[str], str] = str
) -> type[admin.SimpleListFilter]:
    """A list filter on `field` offering `values()` (read from the code or from a small table), where Django's
    filter on the field itself would read every row's value (`SELECT DISTINCT`) on each page."""

    class KnownValues(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            return [(value, label(value)) for value in sorted(set(values()) - {""})]

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            return queryset.filter(**{field: self.value()}) if self.value() else queryset

    KnownValues.title = title
    KnownValues.__name__ = KnownValues.__qualname__ = f"{field.title().replace('_', '')}Filter"
    return KnownValues
