"""Purchases: a succeeded payment's one-time lines become purchases and credit lots (`purchase_record`,
idempotent: the fulfilment key is (payment, line)), a full refund or a lost dispute ends what the payment
granted and takes back its unspent credits (`purchase_revoke`), and `payment_entitlements_apply` is billing's
one call when a payment's status or dispute changed, which picks among these, the plan credits and a plain
recompute.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from billing.models import Payment
from catalog.models import Feature, Price, ProductAccess, ProductFeature
from core.actors import Actor
from core.audit import audit_record
from core.serializers import api_time
from entitlements.models import CreditLot, Purchase
from entitlements.services.plan_credits import (
    DISPUTE_LOST,
    FULFILLABLE,
    _lot_create,
    _lots_take_back,
    plan_credits_grant,
    plan_credits_revoke,
)
from entitlements.services.recompute import entitlements_recompute


def payment_entitlements_apply(*, payment: Payment) -> None:
    """A payment's status or dispute outcome changed (called by billing in the same transaction): a paid one-time
    purchase is recorded, a paid subscription invoice grants its period's plan credits, a full refund or a lost
    dispute takes back what either granted, and anything else (a dispute opened — access is kept, flagged) only
    recomputes a purchase's answer."""
    if payment.status == Payment.Status.REFUNDED or payment.dispute_status == DISPUTE_LOST:
        reason = "lost dispute" if payment.dispute_status == DISPUTE_LOST else "refunded in full"
        changed = purchase_revoke(payment=payment, reason=reason)
        changed = plan_credits_revoke(payment=payment, reason=reason) or changed
    else:
        changed = purchase_record(payment=payment)
        changed = plan_credits_grant(payment=payment) or changed
    # Only purchases take a payment's status into account (a disputed purchase is flagged): a subscription's
    # payment that granted or took back nothing changes no answer, so nothing is recomputed for it.
    if not changed and Purchase.objects.filter(payment_id=payment.pk).exists():
        entitlements_recompute(customer=payment.customer)


def purchase_record(*, payment: Payment) -> bool:
    """Records the one-time lines of a succeeded payment as purchases, grants the credits they carry
    (feature value × quantity, as lots expiring with the purchase), and recomputes. Idempotent per payment;
    returns whether anything was recorded."""
    if payment.status not in FULFILLABLE:
        return False
    # A payment's lines never change: one without a one-time price (a subscription's) records nothing, and
    # needs no lock to know it.
    price_ids = [item.get("price") for item in payment.items if item.get("price")]
    prices = {
        p.pk: p
        for p in Price.objects.filter(
            project_id=payment.project_id, pk__in=price_ids, type=Price.Type.ONE_TIME
        ).select_related("product")
    }
    if not prices:
        return False
    with transaction.atomic():
        locked = Payment.objects.select_for_update().select_related("customer").get(pk=payment.pk)
        if locked.status not in FULFILLABLE or Purchase.objects.filter(payment=locked).exists():
            return False
        if locked.dispute_status == DISPUTE_LOST:
            return False
        starts_at = locked.succeeded_at or timezone.now()
        recorded = False
        for line, item in enumerate(locked.items):
            price = prices.get(item.get("price") or "")
            if price is None or price.type != Price.Type.ONE_TIME:
                continue  # subscriptions give their features through the subscription mirror
            quantity = int(item.get("quantity") or 1)
            access = ProductAccess.objects.filter(product=price.product).first()
            ends_at = (
                starts_at + timedelta(days=access.duration_days)
                if access is not None and access.duration_days
                else None
            )
            purchase = Purchase.objects.create(
                project_id=locked.project_id,
                customer=locked.customer,
                payment=locked,
                line=line,
                product=price.product,
                price=price,
                quantity=quantity,
                starts_at=starts_at,
                ends_at=ends_at,
            )
            recorded = True
            credit_values = ProductFeature.objects.filter(
                product=price.product, feature__type=Feature.Type.CREDITS, value__isnull=False
            ).select_related("feature")
            for row in credit_values:
                if isinstance(row.value, int) and row.value > 0:
                    _lot_create(
                        customer=locked.customer,
                        feature=row.feature,
                        amount=row.value * quantity,
                        expires_at=ends_at,
                        purchase=purchase,
                        reference=purchase.pk,
                    )
        if recorded:
            entitlements_recompute(customer=locked.customer)
        return recorded


def purchase_revoke(*, payment: Payment, reason: str, actor: Actor | None = None) -> bool:
    """Ends what `payment`'s purchases granted and takes back their unspent credits (a full refund, a lost
    dispute, or an operator's decision after a partial refund). A subscription's payment has no purchases: its
    subscription is left alone. Idempotent; returns whether anything was taken back."""
    with transaction.atomic():
        locked = Payment.objects.select_for_update().select_related("customer").get(pk=payment.pk)
        purchases = list(Purchase.objects.select_for_update().filter(payment=locked, revoked_at__isnull=True))
        if not purchases:
            return False
        now = timezone.now()
        for purchase in purchases:
            purchase.revoked_at = now
            purchase.revoke_reason = reason[:500]
            purchase.save(update_fields=["revoked_at", "revoke_reason"])
            audit_record(
                actor=actor or Actor.system("purchase_revoke"),
                action="purchase.revoked",
                target=purchase,
                project=locked.project,
                reason=reason,
                before={"revoked_at": None},
                after={"revoked_at": api_time(now), "payment": locked.pk},
            )
        _lots_take_back(CreditLot.objects.filter(purchase__in=purchases), now=now, reference=locked.pk)
        entitlements_recompute(customer=locked.customer)
        return True
