"""The revenue report of a project's months, per currency and product, from its revenue schedules.

For each month and currency: what was billed (the lines booked in it), given back (the reversals booked in it:
refunds and credit notes, tax aside) and recognised (what the schedules earned in its days, and the prepaid credits
spent or expired in them); the deferred revenue (booked, not yet recognised) and the liability of prepaid credits
(bought, not yet spent or expired) at its opening and closing, with what was added (billed less given back) and
recognised in between: closing = opening + added − recognised, each to the minor unit. Currencies are never added
together.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db.models import Q

from billing.models import SCHEDULE_TIMING, RevenueSchedule, recognised_by
from billing.services.recognition import credits_recognised_by, recognition_sync
from billing.services.recognition_credits import CreditUsage, credit_usage
from catalog.models import Product
from projects.models import Project

FIGURES = (
    "billed",
    "refunds",
    "recognised",
    "deferred_opening",
    "deferred_added",
    "deferred_recognised",
    "deferred_closing",
    "credits_opening",
    "credits_added",
    "credits_recognised",
    "credits_closing",
)


@dataclass
class Figures:
    """A month's figures in minor units. Deferred revenue and the liability of prepaid credits each move as
    opening + added − recognised = closing; `recognised` is both's recognised, `billed` and `refunds` both's
    lines and reversals booked in the month (added = billed − refunds, split between the two)."""

    billed: int = 0
    refunds: int = 0
    recognised: int = 0
    deferred_opening: int = 0
    deferred_added: int = 0
    deferred_recognised: int = 0
    deferred_closing: int = 0
    credits_opening: int = 0
    credits_added: int = 0
    credits_recognised: int = 0
    credits_closing: int = 0


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


def months_before(last: date, count: int) -> date:
    """The first day of the month `count` − 1 months before `last`'s: the first of `count` months ending with it."""
    first = month_start(last)
    for _ in range(count - 1):
        first = month_start(first - timedelta(days=1))
    return first


def next_month(first: date) -> date:
    return (first + timedelta(days=32)).replace(day=1)


def _recognition(
    row: dict[str, Any], usage: dict[str, CreditUsage], given_back: dict[int, list[tuple[date, int]]]
) -> Callable[[date], int]:
    """What the schedule `row` has recognised by the end of a day."""
    if not row["credit_purchase"]:
        timing = {name: row[name] for name in SCHEDULE_TIMING}
        return lambda day: recognised_by(day=day, **timing)
    credits = None if row["reverses_id"] else usage.get(row["credit_purchase"], CreditUsage())
    back = given_back.get(row["pk"], [])

    def by(day: date) -> int:
        return credits_recognised_by(
            row["amount"],
            row["immediate"],
            row["booked_on"],
            credits,
            day,
            given_back=sum(amount for booked, amount in back if booked <= day),
        )

    return by


# The columns of a schedule `recognitions` reads.
SCHEDULE_COLUMNS = (
    "pk",
    "reverses_id",
    "product_id",
    "currency",
    "kind",
    "credit_purchase",
    *SCHEDULE_TIMING,
)


def recognitions(rows: list[dict[str, Any]]) -> list[Callable[[date], int]]:
    """What each schedule of `rows` (their `SCHEDULE_COLUMNS`) has recognised by the end of a day, in their order.
    A prepaid credits line's depends on its reversals: they are among `rows` when booked by that day."""
    usage = credit_usage({row["credit_purchase"] for row in rows if row["credit_purchase"]})
    # A credits line's reversals, by the line: what each took from the liability (not revenue), and when.
    given_back: dict[int, list[tuple[date, int]]] = defaultdict(list)
    for row in rows:
        if row["credit_purchase"] and row["reverses_id"]:
            given_back[row["reverses_id"]].append((row["booked_on"], row["immediate"] - row["amount"]))
    return [_recognition(row, usage, given_back) for row in rows]


def _add(
    figures: dict[tuple[date, str, str | None], Figures],
    months: list[date],
    row: dict[str, Any],
    by: Callable[[date], int],
) -> None:
    """Adds a schedule's share of each month to its (month, currency, product) figures."""
    amount, booked_on = row["amount"], row["booked_on"]
    credits = bool(row["credit_purchase"])
    before = by(months[0] - timedelta(days=1)) if booked_on < months[0] else 0
    for month in months:
        end = next_month(month)
        after = by(end - timedelta(days=1)) if booked_on < end else 0
        booked = amount if month <= booked_on < end else 0
        held_before = (amount - before) if booked_on < month else 0
        held_after = (amount - after) if booked_on < end else 0
        if booked or after != before or held_before or held_after:
            figures_of = figures[(month, row["currency"], row["product_id"])]
            if row["kind"] == RevenueSchedule.Kind.REVERSAL:
                figures_of.refunds -= booked
            else:
                figures_of.billed += booked
            figures_of.recognised += after - before
            prefix = "credits" if credits else "deferred"
            for name, value in (
                ("opening", held_before),
                ("added", booked),
                ("recognised", after - before),
                ("closing", held_after),
            ):
                setattr(figures_of, f"{prefix}_{name}", getattr(figures_of, f"{prefix}_{name}") + value)
        before = after


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
    rows = list(
        RevenueSchedule.objects.filter(project=project, booked_on__lt=closing)
        .filter(
            Q(end_day__gt=opening)
            | Q(booked_on__gte=opening)
            | Q(stopped_on__gte=opening)
            | ~Q(credit_purchase="")
        )
        .values(*SCHEDULE_COLUMNS)
    )
    figures: dict[tuple[date, str, str | None], Figures] = defaultdict(Figures)  # (month, currency, product)
    for row, by in zip(rows, recognitions(rows), strict=True):
        _add(figures, months, row, by)
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
