"""Purchases: a succeeded payment's one-time lines become purchases and credit lots (`purchase_record`,
idempotent: the fulfilment key is (payment, line)), a full refund or a lost dispute ends what the payment
granted and takes back its unspent credits (`purchase_revoke`), and `payment_entitlements_apply` is billing's
one call when a payment's status or dispute changed (with the payment's facts, and what its invoice billed when
it paid a subscription's period), which picks among these, the plan credits and a plain recompute.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from catalog.models import Feature, Price, ProductAccess, ProductFeature
from core.actors import Actor
from core.audit import audit_record
from core.serializers import api_time
from customers.models import Customer
from entitlements import statements
from entitlements.models import CreditLot, Purchase
from entitlements.services.credit_lots import lot_create, lots_take_back
from entitlements.services.plan_credits import (
    DISPUTE_LOST,
    FULFILLABLE,
    REFUNDED,
    plan_credits_revoke,
    plan_period_record,
)
from entitlements.services.recharge import RECHARGE_REFERENCE, recharge_settle
from entitlements.services.recompute import entitlements_recompute
from entitlements.services.sources import PaymentFacts, PlanPeriodFacts


def payment_entitlements_apply(
    *,
    customer: Customer,
    payment: PaymentFacts,
    plan_period: PlanPeriodFacts | None = None,
    plan_period_new: bool = False,
) -> None:
    """A payment's status or dispute outcome changed (called by billing in the same transaction, under the
    payment's row lock): a paid one-time purchase is recorded, a paid subscription invoice (`plan_period`: what
    it billed) grants its period's plan credits, a full refund or a lost dispute takes back what either granted,
    and anything else (a dispute opened — access is kept, flagged) only recomputes a purchase's answer.
    `plan_period_new`: the caller read under that lock that no period is recorded for the payment yet."""
    # Purchases of a payment are only recorded under its row lock (which the caller holds), so whether it has
    # any is read once: most payments (a subscription's) have none, and then there is no copy to update.
    has_purchases = statements.PURCHASED.first(payment_id=payment.id) is not None
    if has_purchases:
        # The purchases' copy of the payment's status: what the resolver flags and the explanation says.
        Purchase.objects.filter(payment_id=payment.id).exclude(
            payment_status=payment.status, dispute_status=payment.dispute_status
        ).update(payment_status=payment.status, dispute_status=payment.dispute_status)
    if payment.status == REFUNDED or payment.dispute_status == DISPUTE_LOST:
        reason = "lost dispute" if payment.dispute_status == DISPUTE_LOST else "refunded in full"
        changed = purchase_revoke(customer=customer, payment_id=payment.id, reason=reason)
        changed = plan_credits_revoke(customer=customer, payment_id=payment.id, reason=reason) or changed
    else:
        changed = purchase_record(customer=customer, payment=payment, recorded=has_purchases)
        if plan_period is not None:
            changed = plan_period_record(customer=customer, facts=plan_period, new=plan_period_new) or changed
    if payment.reference.startswith(RECHARGE_REFERENCE):  # an auto-recharge's charge: it ends its attempt
        recharge_settle(customer=customer, payment=payment)
    # Only purchases take a payment's status into account (a disputed purchase is flagged): a subscription's
    # payment that granted or took back nothing changes no answer, so nothing is recomputed for it. (Purchases
    # recorded just now changed the answer: `changed`.)
    if not changed and has_purchases:
        entitlements_recompute(customer=customer)


def purchase_record(*, customer: Customer, payment: PaymentFacts, recorded: bool | None = None) -> bool:
    """Records the one-time lines of a succeeded payment as purchases, grants the credits they carry
    (feature value × quantity, as lots expiring with the purchase), and recomputes. Idempotent per payment
    (billing calls it under the payment's row lock; `recorded`: whether the caller found, under that lock, that
    the payment has purchases); returns whether anything was recorded."""
    if payment.status not in FULFILLABLE or payment.dispute_status == DISPUTE_LOST:
        return False
    # A payment's lines never change: one without a one-time price (a subscription's) records nothing.
    price_ids = [line.price_id for line in payment.lines if line.price_id]
    prices = {
        p.pk: p for p in statements.ONE_TIME_PRICES.rows(project_id=payment.project_id, price_ids=price_ids)
    }
    if not prices:
        return False
    if recorded is None:
        recorded = statements.PURCHASED.first(payment_id=payment.id) is not None
    if recorded:
        return False
    with transaction.atomic():
        starts_at = payment.succeeded_at or timezone.now()
        created = False
        for index, line in enumerate(payment.lines):
            price = prices.get(line.price_id or "")
            if price is None or price.type != Price.Type.ONE_TIME:
                continue  # subscriptions give their features through the subscription's source
            quantity = line.quantity
            access = ProductAccess.objects.filter(product=price.product).first()
            ends_at = (
                starts_at + timedelta(days=access.duration_days)
                if access is not None and access.duration_days
                else None
            )
            purchase = Purchase.objects.create(
                project_id=payment.project_id,
                customer=customer,
                payment_id=payment.id,
                payment_status=payment.status,
                dispute_status=payment.dispute_status,
                line=index,
                product=price.product,
                price=price,
                quantity=quantity,
                starts_at=starts_at,
                ends_at=ends_at,
            )
            created = True
            credit_values = ProductFeature.objects.filter(
                product=price.product, feature__type=Feature.Type.CREDITS, value__isnull=False
            ).select_related("feature")
            for row in credit_values:
                if isinstance(row.value, int) and row.value > 0:
                    lot_create(
                        customer=customer,
                        feature=row.feature,
                        amount=row.value * quantity,
                        expires_at=ends_at,
                        purchase=purchase,
                        reference=purchase.pk,
                    )
        if created:
            entitlements_recompute(customer=customer)
        return created


def purchase_revoke(*, customer: Customer, payment_id: str, reason: str, actor: Actor | None = None) -> bool:
    """Ends what the payment's purchases granted and takes back their unspent credits (a full refund, a lost
    dispute, or an operator's decision after a partial refund). A subscription's payment has no purchases: its
    subscription is left alone. Idempotent; returns whether anything was taken back."""
    with transaction.atomic():
        purchases = list(
            Purchase.objects.select_for_update()
            .filter(payment_id=payment_id, revoked_at__isnull=True)
            .order_by("line", "pk")
        )
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
                project=customer.project,
                reason=reason,
                before={"revoked_at": None},
                after={"revoked_at": api_time(now), "payment": payment_id},
            )
        lots_take_back(CreditLot.objects.filter(purchase__in=purchases), now=now, reference=payment_id)
        entitlements_recompute(customer=customer)
        return True
