"""Business metrics of a project: subscriptions by status and product, revenue, refunds and MRR per currency.

Reads only (selectors). Money stays in integer minor units; MRR normalises each live subscription's price to a
month (a yearly price counts 1/12 per month, rounded to the minor unit).
"""

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count, Sum
from django.db.models.functions import TruncDay, TruncMonth

from billing.models import Payment, Refund, Subscription
from catalog.models import Price
from catalog.pricing import price_amount
from core.serializers import api_time
from projects.models import Project

# Subscriptions that bring in recurring revenue (a trial does not yet; past_due still counts until it ends).
MRR_STATUSES = (Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)
_MONTHS_PER_INTERVAL = {
    Price.Interval.DAY: Decimal(12) / Decimal(365),
    Price.Interval.WEEK: Decimal(12) / Decimal(52),
    Price.Interval.MONTH: Decimal(1),
    Price.Interval.YEAR: Decimal(12),
}


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


def monthly_amount(price: Price, quantity: int) -> Decimal:
    months = _MONTHS_PER_INTERVAL[Price.Interval(price.interval)] * price.interval_count
    return Decimal(price_amount(price, quantity)) / months


def subscription_monthly_amount(subscription: Subscription) -> Decimal:
    """What a subscription bills by the month, in its currency: every licensed item (the base plan and its
    add-ons; a metered item bills usage, not by the month). One mirrored before its items were: by its price.
    Prefetch `items__price` when summing many."""
    pairs = [(item.price, item.quantity or 0) for item in subscription.items.all()] or [
        (subscription.price, subscription.quantity)
    ]
    return sum(
        (
            monthly_amount(price, quantity)
            for price, quantity in pairs
            if price.usage_type != Price.UsageType.METERED
        ),
        Decimal(0),
    )


def mrr(*, project: Project) -> dict[str, int]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for subscription in (
        Subscription.objects.filter(project=project, status__in=MRR_STATUSES)
        .select_related("price")
        .prefetch_related("items__price")
    ):
        totals[subscription.price.currency] += subscription_monthly_amount(subscription)
    return {
        currency: int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        for currency, amount in sorted(totals.items())
    }


def revenue_metrics(*, project: Project, start: datetime, end: datetime, interval: str) -> dict[str, Any]:
    """Revenue (paid payments by the time they succeeded) and refunds (by the time they were made) per period
    and currency, in [start, end)."""
    trunc = TruncMonth if interval == "month" else TruncDay
    paid = (
        Payment.objects.filter(
            project=project, status__in=Payment.PAID_STATUSES, succeeded_at__gte=start, succeeded_at__lt=end
        )
        .annotate(period=trunc("succeeded_at"))
        .values("period", "currency")
        .annotate(total=Sum("amount"))
    )
    refunded = (
        # As Stripe counts them in a charge's amount_refunded: pending ones too (the money is on its way
        # back), not failed or canceled ones, nor ours that Stripe never made.
        Refund.objects.filter(
            project=project, status__in=Refund.COUNTED_STATUSES, created_at__gte=start, created_at__lt=end
        )
        .exclude(stripe_refund_id="")
        .annotate(period=trunc("created_at"))
        .values("period", "currency")
        .annotate(total=Sum("amount"))
    )
    periods: dict[tuple[date, str], dict[str, int]] = defaultdict(lambda: {"revenue": 0, "refunds": 0})
    for row in paid:
        periods[(_as_date(row["period"]), row["currency"])]["revenue"] += int(row["total"] or 0)
    for row in refunded:
        periods[(_as_date(row["period"]), row["currency"])]["refunds"] += int(row["total"] or 0)
    data = [
        {
            "period_start": period.isoformat(),
            "currency": currency,
            "revenue": amounts["revenue"],
            "refunds": amounts["refunds"],
            "net": amounts["revenue"] - amounts["refunds"],
        }
        for (period, currency), amounts in sorted(periods.items())
    ]
    return {
        "object": "revenue_metrics",
        "from": api_time(start),
        "to": api_time(end),
        "interval": interval,
        "data": data,
        "mrr": mrr(project=project),
    }


def _as_date(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value


def default_window(now: datetime) -> tuple[datetime, datetime]:
    """The last twelve months, from the first of the month eleven months ago to now."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = first
    for _ in range(11):
        start = (start - timedelta(days=1)).replace(day=1)
    return start, now + timedelta(seconds=1)
