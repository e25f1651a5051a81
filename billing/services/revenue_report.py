"""The revenue report of a project's months, per currency and product, from its revenue schedules.

For each month and currency: what was billed (the lines booked in it), given back (the reversals booked in it:
refunds and credit notes, tax aside), recognised (what the schedules earned in its days), and the deferred revenue
(what was booked and not yet recognised) at its opening and closing, with what was added (billed less given back)
in between: closing = opening + added − recognised, to the minor unit. Currencies are never added together.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial

from django.db.models import Q

from billing.models import RevenueSchedule, recognised_by
from billing.services.recognition import recognition_sync
from catalog.models import Product
from projects.models import Project

FIGURES = ("billed", "refunds", "recognised", "deferred_opening", "deferred_closing")


@dataclass
class Figures:
    billed: int = 0
    refunds: int = 0
    recognised: int = 0
    deferred_opening: int = 0
    deferred_closing: int = 0

    @property
    def deferred_added(self) -> int:
        return self.billed - self.refunds


@dataclass
class ProductFigures(Figures):
    product: str | None = None  # Tollgate's product id; None for lines of no product (an amount paid as such)
    name: str = ""


@dataclass
class CurrencyReport(Figures):
    currency: str = ""
    products: list[ProductFigures] = field(default_factory=list)


@dataclass
class MonthReport:
    month: date  # its first day
    currencies: list[CurrencyReport]


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(first: date) -> date:
    return (first + timedelta(days=32)).replace(day=1)


def revenue_months(project: Project, first: date, last: date, *, sync: bool = True) -> list[MonthReport]:
    """The reports of the months from `first`'s to `last`'s (inclusive), oldest first. `sync` brings the schedules
    up to the mirror first."""
    if sync:
        recognition_sync(project)
    months = []
    month = month_start(first)
    while month <= month_start(last):
        months.append(month)
        month = next_month(month)
    if not months:
        return []
    opening, closing = months[0], next_month(months[-1])
    rows = RevenueSchedule.objects.filter(project=project, booked_on__lt=closing).filter(
        Q(end_day__gt=opening) | Q(booked_on__gte=opening) | Q(stopped_on__gte=opening)
    )
    timing = ("amount", "immediate", "start_day", "end_day", "booked_on", "stopped_on")
    # (month, currency, product) → figures
    figures: dict[tuple[date, str, str | None], Figures] = defaultdict(Figures)
    for schedule in rows.values("product_id", "currency", "kind", *timing).iterator(chunk_size=5000):
        by = partial(recognised_by, **{name: schedule[name] for name in timing})
        amount, booked_on = schedule["amount"], schedule["booked_on"]
        currency, product_id = schedule["currency"], schedule["product_id"]
        kind = schedule["kind"]
        before = by(day=opening - timedelta(days=1)) if booked_on < opening else 0
        for month in months:
            end = next_month(month)
            after = by(day=end - timedelta(days=1)) if booked_on < end else 0
            booked = amount if month <= booked_on < end else 0
            open_deferred = (amount - before) if booked_on < month else 0
            close_deferred = (amount - after) if booked_on < end else 0
            if not (booked or after - before or open_deferred or close_deferred):
                before = after
                continue
            row = figures[(month, currency, product_id)]
            if kind == RevenueSchedule.Kind.REVERSAL:
                row.refunds -= booked
            else:
                row.billed += booked
            row.recognised += after - before
            row.deferred_opening += open_deferred
            row.deferred_closing += close_deferred
            before = after
    names = dict(Product.objects.filter(project=project).values_list("pk", "name"))
    reports = []
    for month in months:
        currencies: dict[str, CurrencyReport] = {}
        for (at, currency, product_id), row in sorted(
            figures.items(), key=lambda item: (item[0][1], names.get(item[0][2] or "", ""), item[0][2] or "")
        ):
            if at != month:
                continue
            total = currencies.setdefault(currency, CurrencyReport(currency=currency))
            for name in FIGURES:
                setattr(total, name, getattr(total, name) + getattr(row, name))
            total.products.append(
                ProductFigures(
                    product=product_id,
                    name=names.get(product_id or "", ""),
                    **{name: getattr(row, name) for name in FIGURES},
                )
            )
        reports.append(MonthReport(month=month, currencies=[currencies[c] for c in sorted(currencies)]))
    return reports


def revenue_report(project: Project, month: date) -> MonthReport:
    return revenue_months(project, month, month)[0]
