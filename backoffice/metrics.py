"""Business metrics of a project: subscriptions by status and product, revenue, refunds and MRR per currency.

Reads only (selectors). Money stays in integer minor units; MRR normalises each live subscription's price to a
month (a yearly price counts 1/12 per month), summed to a millionth of a minor unit and rounded to the minor unit.
Revenue, refunds and MRR come from the figures billing keeps as the events arrive (billing.models.revenue), so
reading them costs the same at any number of payments and subscriptions.
"""

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, Sum
from django.db.models.functions import TruncDay

from billing import selectors as billing_selectors
from billing.models import Figure, Payment, Refund, Subscription
from billing.services import revenue_figures
from core.serializers import api_time
from projects.models import Project


def subscription_metrics(*, project: Project) -> dict[str, Any]:
    rows = (
        Subscription.objects.filter(project=project)
        .values("status", "product__key")
        .annotate(count=Count("id"))
        .order_by("product__key", "status")
    )
    by_status: dict[str, int] = defaultdict(int)
    by_product: dict[str, dict[str, int]] = defaultdict(dict)
    for row in rows:
        by_status[row["status"]] += row["count"]
        by_product[row["product__key"]][row["status"]] = row["count"]
    return {
        "object": "subscription_metrics",
        "total": sum(by_status.values()),
        "by_status": dict(by_status),
        "by_product": dict(by_product),
    }


def mrr(*, project: Project) -> dict[str, int]:
    """Monthly recurring revenue per currency, from the figure kept as subscriptions change
    (billing.services.revenue_figures): the same whatever the number of subscriptions."""
    totals: dict[str, int] = defaultdict(int)
    for (_, currency, _), micros in billing_selectors.revenue_figures(
        project=project, figures=(Figure.MRR,)
    ).items():
        totals[currency] += micros
    return {
        currency: revenue_figures.mrr_minor_units(micros)
        for currency, micros in sorted(totals.items())
        if micros
    }


def revenue_metrics(*, project: Project, start: datetime, end: datetime, interval: str) -> dict[str, Any]:
    """Revenue (paid payments by the time they succeeded) and refunds (by the time they were made) per period
    and currency, in [start, end), and MRR."""
    data = [
        {
            "period_start": period.isoformat(),
            "currency": currency,
            "revenue": amounts["revenue"],
            "refunds": amounts["refunds"],
            "net": amounts["revenue"] - amounts["refunds"],
        }
        for (period, currency), amounts in sorted(
            revenue_by_period(project=project, start=start, end=end, interval=interval).items()
        )
    ]
    return {
        "object": "revenue_metrics",
        "from": api_time(start),
        "to": api_time(end),
        "interval": interval,
        "data": data,
        "mrr": mrr(project=project),
    }


def revenue_by_period(
    *, project: Project, start: datetime, end: datetime, interval: str
) -> dict[tuple[date, str], dict[str, int]]:
    """{(period's first day, currency): {"revenue", "refunds"}} of the project in [start, end); periods with
    neither are absent. Whole UTC days are read from the figures kept as the events
    arrive; the parts of a day at either end of the window, from the payments and refunds of those hours."""
    trunc = _first_of_month if interval == "month" else (lambda day: day)
    periods: dict[tuple[date, str], dict[str, int]] = defaultdict(lambda: {"revenue": 0, "refunds": 0})
    whole, hours = _split(start.astimezone(UTC), end.astimezone(UTC))
    if whole is not None:
        for (figure, currency, day), amount in billing_selectors.revenue_figures(
            project=project,
            figures=(Figure.REVENUE, Figure.REFUNDS),
            since=whole[0],
            until=whole[1],
            by=interval,
        ).items():
            periods[(trunc(_as_date(day)), currency)][figure] += amount
    for first, following in hours:
        for figure, rows in _figures_between(project, first, following).items():
            for row in rows:
                periods[(trunc(_as_date(row["day"])), row["currency"])][figure] += int(row["total"] or 0)
    return {key: amounts for key, amounts in periods.items() if amounts["revenue"] or amounts["refunds"]}


def _first_of_month(day: date) -> date:
    return day.replace(day=1)


def _split(
    start: datetime, end: datetime
) -> tuple[tuple[date, date] | None, list[tuple[datetime, datetime]]]:
    """[start, end) as the whole UTC days in it ([first, last) as dates, or None) and the hours around them."""
    first = start.date() if start == _midnight(start.date()) else start.date() + timedelta(days=1)
    last = end.date()
    if first >= last:
        return None, [(start, end)]
    hours = []
    if start < _midnight(first):
        hours.append((start, _midnight(first)))
    if _midnight(last) < end:
        hours.append((_midnight(last), end))
    return (first, last), hours


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _figures_between(project: Project, start: datetime, end: datetime) -> dict[str, Any]:
    """Revenue and refunds per UTC day and currency in [start, end), read from the rows (a part of a day), counted
    as the figures count them (revenue_figures.PAYMENT_COUNTED, REFUND_COUNTED)."""
    paid = (
        Payment.objects.filter(
            revenue_figures.PAYMENT_COUNTED, project=project, succeeded_at__gte=start, succeeded_at__lt=end
        )
        .annotate(day=TruncDay("succeeded_at", tzinfo=UTC))
        .values("day", "currency")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    refunded = (
        Refund.objects.filter(
            revenue_figures.REFUND_COUNTED, project=project, created_at__gte=start, created_at__lt=end
        )
        .annotate(day=TruncDay("created_at", tzinfo=UTC))
        .values("day", "currency")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    return {Figure.REVENUE: paid, Figure.REFUNDS: refunded}


def _as_date(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value


def default_window(now: datetime) -> tuple[datetime, datetime]:
    """The last twelve months, from the first of the month eleven months ago to now."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = first
    for _ in range(11):
        start = (start - timedelta(days=1)).replace(day=1)
    return start, now + timedelta(seconds=1)
