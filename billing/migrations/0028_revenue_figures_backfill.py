"""Counts what was paid, refunded and billed by the month before the figures existed (billing.models.revenue).

Payments and refunds count as the services count them. A subscription that is live now counts from the day it
started billing (its trial's end, else its start), in MRR and among the live subscriptions; a cancelled one that
had started billing is counted from then to its cancellation, so that the MRR and live subscriptions of past
months are what the dashboard reconstructed from the same dates before the figures."""

from collections import defaultdict
from datetime import UTC
from decimal import ROUND_HALF_UP, Decimal

from django.db import migrations
from django.db.models import F, Q, Sum
from django.db.models.functions import TruncDate

LIVE = ("active", "past_due")
NEVER_PAYING = ("incomplete", "incomplete_expired")


def backfill(apps, schema_editor):
    from billing.services.revenue_figures import MRR_UNIT, monthly_amount

    Payment = apps.get_model("billing", "Payment")
    Refund = apps.get_model("billing", "Refund")
    Subscription = apps.get_model("billing", "Subscription")
    RevenueTotal = apps.get_model("billing", "RevenueTotal")
    sums: dict[tuple, int] = defaultdict(int)
    for model, figure, when, counted in (
        (
            Payment,
            "revenue",
            "succeeded_at",
            Q(
                status__in=("succeeded", "partially_refunded", "refunded", "disputed"),
                succeeded_at__isnull=False,
            ),
        ),
        (
            Refund,
            "refunds",
            "created_at",
            Q(status__in=("pending", "requires_action", "succeeded")) & ~Q(stripe_refund_id=""),
        ),
    ):
        rows = model.objects.filter(counted)
        rows.update(revenue_counted=F("amount"), revenue_day=TruncDate(when, tzinfo=UTC))
        for row in (
            rows.values("project_id", "currency", "revenue_day").annotate(total=Sum("amount")).order_by()
        ):
            sums[(row["project_id"], figure, row["revenue_day"], row["currency"])] += int(row["total"])
    for subscription in (
        Subscription.objects.exclude(status__in=NEVER_PAYING)
        .select_related("price")
        .prefetch_related("items__price")
        .iterator(chunk_size=2000)
    ):
        live = subscription.status in LIVE
        if not live and (subscription.status != "canceled" or subscription.canceled_at is None):
            continue
        pairs = [(item.price, item.quantity or 0) for item in subscription.items.all()] or [
            (subscription.price, subscription.quantity)
        ]
        exact = sum(
            (monthly_amount(price, quantity) for price, quantity in pairs if price.usage_type != "metered"),
            Decimal(0),
        )
        micros = int((exact * MRR_UNIT).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        started = subscription.trial_end or subscription.created_at
        if not live and started >= subscription.canceled_at:
            continue  # cancelled before it started billing
        currency = subscription.price.currency
        start_day = started.astimezone(UTC).date()
        sums[(subscription.project_id, "mrr", start_day, currency)] += micros
        sums[(subscription.project_id, "active", start_day, "")] += 1
        if live:
            Subscription.objects.filter(pk=subscription.pk).update(mrr_counted=micros, mrr_currency=currency)
        else:
            end_day = subscription.canceled_at.astimezone(UTC).date()
            sums[(subscription.project_id, "mrr", end_day, currency)] -= micros
            sums[(subscription.project_id, "active", end_day, "")] -= 1
    RevenueTotal.objects.bulk_create(
        [
            RevenueTotal(project_id=project_id, figure=figure, day=day, currency=currency, amount=amount)
            for (project_id, figure, day, currency), amount in sorted(sums.items())
            if amount
        ],
        batch_size=2000,
    )


class Migration(migrations.Migration):
    dependencies = [("billing", "0027_revenue_figures")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
