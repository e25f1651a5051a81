"""Refunds and disputes: refunding a paid payment at Stripe, and applying Stripe's refunds, charges (their
refunded amount) and disputes to the payment, whatever order their events arrive in.
"""

from typing import Any

from django.db import transaction

from billing.gateway import gateway_for, idempotency_key
from billing.models import Payment, Refund
from billing.payments.transitions import payment_transition
from core.actors import Actor
from core.errors import ApiError, Conflict, InvalidRequest
from core.services import audit_record


def payment_refund(*, payment: Payment, amount: int | None, reason: str, actor: Actor) -> Payment:
    """Refunds all (amount=None) or part of a paid payment at Stripe, then records it."""
    if payment.status not in (
        Payment.Status.SUCCEEDED,
        Payment.Status.PARTIALLY_REFUNDED,
        Payment.Status.DISPUTED,
    ):
        raise Conflict(
            f"Only paid payments can be refunded; this one is {payment.status}.",
            code="payment_not_refundable",
        )
    if not payment.stripe_payment_intent_id:
        raise Conflict("This payment has no Stripe charge to refund.", code="payment_not_refundable")
    refundable = payment.amount - payment.amount_refunded
    amount = refundable if amount is None else amount
    if amount <= 0 or amount > refundable:
        raise InvalidRequest(
            f"amount must be between 1 and {refundable}.", code="invalid_amount", param="amount"
        )
    with transaction.atomic():
        refund = Refund.objects.create(
            project=payment.project, payment=payment, amount=amount, currency=payment.currency, reason=reason
        )
        audit_record(
            actor=actor,
            action="payment.refund_requested",
            target=payment,
            project=payment.project,
            reason=reason,
            after={"refund": refund.pk, "amount": amount},
        )
    try:
        stripe_refund = gateway_for(payment.project).refund_create(
            payment_intent=payment.stripe_payment_intent_id,
            amount=amount,
            reason=None,
            metadata={
                "tollgate_project": payment.project_id,
                "tollgate_payment": payment.pk,
                "tollgate_refund": refund.pk,
            },
            idem=idempotency_key("refund", refund.pk, "create"),
        )
    except ApiError:
        Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.FAILED)
        raise
    return refund_apply(refund_id=refund.pk, stripe_refund=stripe_refund)


def payment_apply_refunded(*, payment: Payment, amount_refunded: int) -> Payment:
    """Records how much of a paid payment is refunded (only ever growing), and its refund status."""
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        amount_refunded = min(max(amount_refunded, locked.amount_refunded), locked.amount)
        status = locked.status
        if status != Payment.Status.DISPUTED:
            status = (
                Payment.Status.REFUNDED
                if amount_refunded >= locked.amount
                else (Payment.Status.PARTIALLY_REFUNDED if amount_refunded else Payment.Status.SUCCEEDED)
            )
        return payment_transition(
            payment=locked, allowed_from=Payment.PAID_STATUSES, amount_refunded=amount_refunded, status=status
        )


def payment_apply_charge(*, payment: Payment, charge: dict[str, Any]) -> Payment:
    """Applies a Stripe charge's money state (a refund event carries it whole): a charge that succeeded settles
    a payment still open here (its success event late or lost), then its refunded amount is recorded — so any
    order of payment and refund events ends refunded."""
    with transaction.atomic():
        if payment.is_open and charge.get("status") == "succeeded":
            payment = payment_transition(
                payment=payment, allowed_from=Payment.OPEN_STATUSES, status=Payment.Status.SUCCEEDED
            )
        refunded = min(int(charge.get("amount_refunded") or 0), payment.amount)
        return payment_apply_refunded(payment=payment, amount_refunded=refunded)


# A dispute only moves forward: opened (warnings, needs_response) → under review → won | lost.
DISPUTE_RANK = {
    "warning_needs_response": 1,
    "needs_response": 1,
    "warning_under_review": 2,
    "under_review": 2,
    "warning_closed": 3,
    "won": 3,
    "lost": 3,
}


def payment_apply_dispute(*, payment: Payment, dispute: dict[str, Any]) -> Payment:
    """Applies a Stripe dispute's status. An open dispute flags the payment (access is kept meanwhile); a lost
    one ends what the payment granted (the transition hands the dispute status to entitlements); a won one
    returns the payment to its paid status. An older dispute state than the one held is ignored."""
    outcome = str(dispute.get("status") or "")
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if DISPUTE_RANK.get(outcome, 0) < DISPUTE_RANK.get(locked.dispute_status, 0):
            return locked
        if locked.is_open:  # a dispute proves the charge succeeded (its success event late or lost)
            locked = payment_transition(
                payment=locked, allowed_from=Payment.OPEN_STATUSES, status=Payment.Status.SUCCEEDED
            )
        if outcome in ("won", "warning_closed"):
            restored = (
                Payment.Status.REFUNDED
                if locked.amount_refunded >= locked.amount
                else Payment.Status.PARTIALLY_REFUNDED
                if locked.amount_refunded
                else Payment.Status.SUCCEEDED
            )
            return payment_transition(
                payment=locked, allowed_from=Payment.PAID_STATUSES, status=restored, dispute_status=outcome
            )
        return payment_transition(
            payment=locked,
            allowed_from=Payment.PAID_STATUSES,
            status=Payment.Status.DISPUTED,
            dispute_status=outcome,
        )


def refund_apply(*, refund_id: str, stripe_refund: dict[str, Any]) -> Payment:
    """Records Stripe's refund on our refund and recomputes the payment's refunded amount (idempotent)."""
    status = {
        "succeeded": Refund.Status.SUCCEEDED,
        "failed": Refund.Status.FAILED,
        "canceled": Refund.Status.CANCELED,
    }.get(stripe_refund["status"], Refund.Status.PENDING)
    with transaction.atomic():
        refund = Refund.objects.select_related("payment").select_for_update().get(pk=refund_id)
        refund.status = status
        refund.stripe_refund_id = stripe_refund["id"]
        refund.save(update_fields=["status", "stripe_refund_id", "updated_at"])
        payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
        refunded = min(
            payment.amount,
            sum(
                Refund.objects.filter(
                    payment=payment, status__in=(Refund.Status.SUCCEEDED, Refund.Status.PENDING)
                ).values_list("amount", flat=True)
            ),
        )
        payment = payment_apply_refunded(payment=payment, amount_refunded=refunded)
    return payment
