"""Fills what entitlements now reads instead of billing's tables (entitlements.0009): a subscription source per
subscription, and each purchase's payment status and each plan period's invoice number. Written here because only
billing may read billing's tables; afterwards billing hands these facts as it changes its rows."""

from typing import Any

from django.db import migrations
from django.db.models import OuterRef, Subquery


def sources_fill(apps: Any, schema_editor: Any) -> None:
    Subscription = apps.get_model("billing", "Subscription")
    SubscriptionItem = apps.get_model("billing", "SubscriptionItem")
    Payment = apps.get_model("billing", "Payment")
    Invoice = apps.get_model("billing", "Invoice")
    SubscriptionSource = apps.get_model("entitlements", "SubscriptionSource")
    Purchase = apps.get_model("entitlements", "Purchase")
    PlanPeriod = apps.get_model("entitlements", "PlanPeriod")

    items: dict[str, list[dict[str, Any]]] = {}
    for item in SubscriptionItem.objects.order_by("subscription_id", "position", "created_at", "id"):
        metered = item.usage_type == "metered"
        items.setdefault(item.subscription_id, []).append(
            {
                "product": item.product_id,
                "price": item.price_id,
                "metered": metered,
                "quantity": None if metered else int(item.quantity or 1),
            }
        )
    batch = []
    for subscription in Subscription.objects.select_related("price").order_by("pk").iterator():
        batch.append(
            SubscriptionSource(
                id=subscription.pk,
                project_id=subscription.project_id,
                customer_id=subscription.customer_id,
                product_id=subscription.product_id,
                quantity=subscription.quantity,
                items=items.get(subscription.pk, []),
                status=subscription.status,
                current_period_start=subscription.current_period_start,
                current_period_end=subscription.current_period_end,
                interval=subscription.price.interval or "month",
                interval_count=subscription.price.interval_count or 1,
                cancel_at_period_end=subscription.cancel_at_period_end,
                trial_end=subscription.trial_end,
                canceled_at=subscription.canceled_at,
                created_at=subscription.created_at,
                updated_at=subscription.updated_at,
            )
        )
        if len(batch) >= 1000:
            SubscriptionSource.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    SubscriptionSource.objects.bulk_create(batch, ignore_conflicts=True)

    payments = Payment.objects.filter(pk=OuterRef("payment_id"))
    Purchase.objects.update(
        payment_status=Subquery(payments.values("status")[:1]),
        dispute_status=Subquery(payments.values("dispute_status")[:1]),
    )
    PlanPeriod.objects.update(
        invoice_number=Subquery(Invoice.objects.filter(pk=OuterRef("invoice_id")).values("number")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0024_move_out_models"),
        ("entitlements", "0010_sources_and_billing_facts"),
    ]

    operations = [
        migrations.RunPython(sources_fill, migrations.RunPython.noop),
    ]
