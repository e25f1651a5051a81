"""Refunds and disputes: refunding a paid payment at Stripe exactly once, settling every refund on Stripe's
status, and applying Stripe's refunds, charges and disputes to the payment, whatever order their events arrive in.

A refund asked through Tollgate is written first (`pending`, with the operation that asked for it), then sent to
Stripe under an idempotency key derived from that operation — a tenant's Idempotency-Key, the late-payment
refund of a payment, an operator's form — never from a row made per attempt. A retry of the operation finds its
row and sends the same key, so Stripe makes one refund and answers it again. An answer that never came is
recorded as `unknown` before the caller's key is released; the retry, Stripe's refund events or the settle
sweep (`refunds_settle_sweep`, which lists the payment's refunds at Stripe and matches `metadata.tollgate_refund`)
put Stripe's id and status on it. Refunds made at Stripe directly are mirrored from the same reads, so a
payment's refunded amount is the sum of its refunds that Stripe counts (pending, requires action, succeeded) —
and goes down again when one fails.
"""

import logging
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from billing.models import Payment, Refund
from billing.services.journal import journal_refund
from billing.services.payment_transitions import payment_transition
from billing.services.revenue_figures import refund_figures
from core.actors import Actor
from core.audit import audit_record
from core.errors import ApiError, Conflict, InvalidRequest
from stripe_gateway.errors import outcome_unknown, refusal_code
from stripe_gateway.gateway import from_timestamp, gateway_for, idempotency_key

logger = logging.getLogger(__name__)

REFUNDABLE_STATUSES = (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED, Payment.Status.DISPUTED)
# Stripe's refusals that mean our view of the charge is behind (refunds or a dispute made meanwhile).
_STALE_REFUSALS = ("amount_too_large", "charge_already_refunded", "charge_disputed")
# How old a refund without a Stripe id must be before the sweep takes Stripe's silence for "never made": past
# any attempt still in flight (the SDK's timeouts and retries, the Idempotency-Key lock).
UNSENT_AFTER = timedelta(minutes=10)
# How long a refund may stay pending at Stripe before the sweep reads it (its events may have been lost).
PENDING_READ_AFTER = timedelta(hours=1)


def payment_refund(
    *, payment: Payment, amount: int | None, reason: str, actor: Actor, operation: str = ""
) -> Payment:
    """Refunds all (amount=None) or part of a paid payment at Stripe, then records it. `operation` names the
    asking operation: a retry of it continues the first attempt's refund (and answers the payment as it now
    is) instead of judging the request again against the state that attempt left. Without one, every call is
    a refund of its own."""
    if operation:
        earlier = Refund.objects.filter(project=payment.project_id, operation=operation).first()
        if earlier is not None:
            return _refund_continue(earlier, payment=payment, amount=amount)
    if payment.status not in REFUNDABLE_STATUSES:
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
    try:
        with transaction.atomic():
            refund = Refund.objects.create(
                project=payment.project,
                payment=payment,
                amount=amount,
                currency=payment.currency,
                reason=reason,
                operation=operation,
            )
            audit_record(
                actor=actor,
                action="payment.refund_requested",
                target=payment,
                project=payment.project,
                reason=reason,
                after={"refund": refund.pk, "amount": amount},
            )
    except IntegrityError:  # the same operation, concurrently (outside the API's key lock): continue that one
        earlier = Refund.objects.filter(project=payment.project_id, operation=operation).first()
        if not operation or earlier is None:
            raise
        return _refund_continue(earlier, payment=payment, amount=amount)
    return refund_send(refund=refund)


def _refund_continue(refund: Refund, *, payment: Payment, amount: int | None) -> Payment:
    if refund.payment_id != payment.pk or (amount is not None and amount != refund.amount):
        raise Conflict(
            "This Idempotency-Key was already used with a different request.",
            code="idempotency_key_reused",
            param="Idempotency-Key",
        )
    return refund_send(refund=refund)


def refund_stripe_key(refund: Refund) -> str:
    """The Stripe idempotency key of a refund's creation: its operation's, else the row's own."""
    if refund.operation:
        return idempotency_key("refund", refund.operation)
    return idempotency_key("refund", refund.pk, "create")


def refund_send(*, refund: Refund) -> Payment:
    """Asks Stripe for the refund under its key (again, for a retry: Stripe answers what it did the first time)
    and records Stripe's answer. A refund Stripe already answered is not sent again."""
    if refund.stripe_refund_id:
        return Payment.objects.select_related("project", "customer").get(pk=refund.payment_id)
    payment = Payment.objects.select_related("project").get(pk=refund.payment_id)
    try:
        stripe_refund = gateway_for(payment.project).refund_create(
            payment_intent=payment.stripe_payment_intent_id,
            amount=refund.amount,
            reason=None,
            metadata={
                "tollgate_project": payment.project_id,
                "tollgate_payment": payment.pk,
                "tollgate_refund": refund.pk,
            },
            idem=refund_stripe_key(refund),
        )
    except ApiError as exc:
        # Recorded before the caller's key is released: `unknown` when Stripe may have acted (the retry or
        # the sweep reads what it did), `failed` when Stripe refused and did nothing.
        unknown = outcome_unknown(exc)
        Refund.objects.filter(pk=refund.pk, stripe_refund_id="").update(
            status=Refund.Status.UNKNOWN if unknown else Refund.Status.FAILED,
            failure_reason="" if unknown else (refusal_code(exc) or exc.code)[:100],
            updated_at=timezone.now(),
        )
        refused = refusal_code(exc)
        if refused in _STALE_REFUSALS:
            # Stripe knows refunds or a dispute that we do not yet: learn them, and answer what retrying cannot
            # change as a 4xx (a 5xx would have the tenant retry in vain).
            payment = payment_refunds_sync(payment=payment)
            left = payment.amount - payment.amount_refunded
            if refused == "amount_too_large" and left > 0:
                raise InvalidRequest(
                    f"amount must be between 1 and {left}.", code="invalid_amount", param="amount"
                ) from exc
            raise Conflict(
                f"Stripe refused the refund: {exc.message}", code="payment_not_refundable"
            ) from exc
        raise
    return refund_apply(refund_id=refund.pk, stripe_refund=stripe_refund)


def payment_refunded_recompute(*, payment: Payment) -> Payment:
    """Records a paid payment's refunded amount as Stripe counts it — the sum of its refunds that are pending,
    require action or succeeded — and its refund status. It goes down again when a refund fails."""
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        counted = Refund.objects.filter(payment=locked, status__in=Refund.COUNTED_STATUSES).exclude(
            stripe_refund_id=""
        )
        amount_refunded = min(int(counted.aggregate(total=Sum("amount"))["total"] or 0), locked.amount)
        status = locked.status
        if status in (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED, Payment.Status.REFUNDED):
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
    a payment still open here (its success event late or lost); a refunded amount that differs from the
    refunds recorded here means refunds we have not seen (made at Stripe, or their events still on the way):
    they are read from Stripe, so any order of payment and refund events ends as Stripe has it."""
    with transaction.atomic():
        if payment.is_open and charge.get("status") == "succeeded":
            payment = payment_transition(
                payment=payment, allowed_from=Payment.OPEN_STATUSES, status=Payment.Status.SUCCEEDED
            )
    if payment.status not in Payment.PAID_STATUSES:
        return payment
    if min(int(charge.get("amount_refunded") or 0), payment.amount) != payment.amount_refunded:
        return payment_refunds_sync(payment=payment)
    return payment


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
    held_back = int(dispute.get("amount") or 0)
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
                payment=locked,
                allowed_from=Payment.PAID_STATUSES,
                status=restored,
                dispute_status=outcome,
                dispute_amount=held_back,
            )
        return payment_transition(
            payment=locked,
            allowed_from=Payment.PAID_STATUSES,
            status=Payment.Status.DISPUTED,
            dispute_status=outcome,
            dispute_amount=held_back,
        )


# A refund's status only moves forward; a succeeded refund may still fail later (Stripe gives the money back).
_RANK: dict[str, int] = {
    Refund.Status.PENDING: 0,
    Refund.Status.REQUIRES_ACTION: 0,
    Refund.Status.SUCCEEDED: 1,
    Refund.Status.FAILED: 2,
    Refund.Status.CANCELED: 2,
}


def refund_apply(*, refund_id: str, stripe_refund: dict[str, Any]) -> Payment:
    """Records Stripe's refund on our refund (its id, its status unless an older state than the one held) and
    recomputes the payment's refunded amount (idempotent)."""
    status = Refund.Status(stripe_refund["status"]) if stripe_refund.get("status") in _RANK else None
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        known = bool(refund.stripe_refund_id)
        if not known:
            refund.stripe_refund_id = stripe_refund["id"]
        if status is not None and (not known or _RANK[status] >= _RANK.get(refund.status, 0)):
            refund.status = status
            refund.failure_reason = str(stripe_refund.get("failure_reason") or "")[:100]
        refund.save(
            update_fields=[
                "status",
                "stripe_refund_id",
                "failure_reason",
                *refund_figures(refund),
                "updated_at",
            ]
        )
        journal_refund(refund)
        return payment_refunded_recompute(payment=Payment.objects.get(pk=refund.payment_id))


def refund_of_stripe(*, payment: Payment, stripe_refund: dict[str, Any]) -> Refund | None:
    """Our refund that is Stripe's `stripe_refund`: by its Stripe id, else by the `metadata.tollgate_refund` we
    sent (one whose answer never came); None for a refund made at Stripe that we have not mirrored."""
    refunds = Refund.objects.filter(project=payment.project_id)
    found = refunds.filter(stripe_refund_id=stripe_refund["id"]).first()
    ours = str((stripe_refund.get("metadata") or {}).get("tollgate_refund") or "")
    if found is None and ours:
        found = refunds.filter(pk=ours, payment=payment, stripe_refund_id="").first()
    return found


def refund_mirror(*, payment: Payment, stripe_refund: dict[str, Any]) -> Payment:
    """Applies one of Stripe's refunds of `payment`: to our row (by its Stripe id, else the
    `metadata.tollgate_refund` we sent), or to a new row for a refund made at Stripe directly."""
    refunds = Refund.objects.filter(project=payment.project_id)
    refund = refund_of_stripe(payment=payment, stripe_refund=stripe_refund)
    if refund is None:
        try:
            with transaction.atomic():
                refund = Refund.objects.create(
                    project=payment.project,
                    payment=payment,
                    amount=int(stripe_refund["amount"]),
                    currency=str(stripe_refund.get("currency") or payment.currency),
                    reason=str(stripe_refund.get("reason") or ""),
                    status=Refund.Status.PENDING,
                    stripe_refund_id=stripe_refund["id"],
                )
                # When Stripe made it, not when we learnt of it: revenue is reported by the refund's time.
                made = from_timestamp(stripe_refund.get("created"))
                if made is not None:
                    refund.created_at = made
                # Counted from the moment it exists, on the day Stripe made it (refund_apply below settles its
                # status).
                refund.save(
                    update_fields=[*(["created_at"] if made is not None else []), *refund_figures(refund)]
                )
        except IntegrityError:  # mirrored concurrently (its event and the sweep)
            refund = refunds.get(stripe_refund_id=stripe_refund["id"])
    return refund_apply(refund_id=refund.pk, stripe_refund=stripe_refund)


def payment_refunds_sync(*, payment: Payment) -> Payment:
    """Reads every refund of the payment at Stripe and records each (ours settled, Stripe's own mirrored); a
    refund of ours that Stripe does not have and that no attempt can still be sending (`UNSENT_AFTER`) was
    never made: it is `failed`, and its operation's retry may send it again."""
    if not payment.stripe_payment_intent_id:
        return payment
    at_stripe = gateway_for(payment.project).refunds_of(payment.stripe_payment_intent_id)
    for stripe_refund in reversed(at_stripe):  # oldest first
        payment = refund_mirror(payment=payment, stripe_refund=stripe_refund)
    never_made = Refund.objects.filter(
        payment=payment,
        stripe_refund_id="",
        status__in=(Refund.Status.PENDING, Refund.Status.UNKNOWN),
        updated_at__lt=timezone.now() - UNSENT_AFTER,
    )
    for refund in never_made:
        logger.warning("Refund %s never reached Stripe: marked failed.", refund.pk)
    never_made.update(status=Refund.Status.FAILED, failure_reason="not_sent", updated_at=timezone.now())
    return payment_refunded_recompute(payment=payment)


def refunds_settle_sweep(*, limit: int = 200) -> int:
    """Settles refunds whose outcome is not known here: asked but never answered (an answer lost, a process
    killed between Stripe's answer and our commit) once no attempt can still be in flight, and refunds pending
    at Stripe for a while (their later events may have been lost). One read of Stripe per payment. Returns
    the number of payments read."""
    now = timezone.now()
    due = (
        Refund.objects.filter(
            Q(stripe_refund_id="", status__in=(Refund.Status.PENDING, Refund.Status.UNKNOWN))
            & Q(updated_at__lt=now - UNSENT_AFTER)
            | Q(status__in=(Refund.Status.PENDING, Refund.Status.REQUIRES_ACTION))
            & ~Q(stripe_refund_id="")
            & Q(updated_at__lt=now - PENDING_READ_AFTER)
        )
        .order_by("updated_at")
        .values_list("payment_id", flat=True)
    )
    payments = list(dict.fromkeys(due[:limit]))
    read = 0
    for payment in Payment.objects.filter(pk__in=payments).select_related("project", "customer"):
        try:
            payment_refunds_sync(payment=payment)
        except ApiError as exc:  # Stripe unavailable: the next sweep reads again
            logger.warning("Could not settle the refunds of payment %s: %s", payment.pk, exc.code)
            continue
        # A pending refund read just now is read again only after another PENDING_READ_AFTER.
        Refund.objects.filter(
            payment_id=payment.pk, status__in=(Refund.Status.PENDING, Refund.Status.REQUIRES_ACTION)
        ).exclude(stripe_refund_id="").update(updated_at=timezone.now())
        read += 1
    return read
