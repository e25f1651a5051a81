"""Closing open payments: a tenant's cancel and the expiry of payments past their TTL. A payment is closed at
Stripe first and marked closed only when Stripe confirms; one Stripe reports as paid meanwhile becomes `succeeded`
instead (and an expired one is refunded when the project asks for it).
"""

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from billing.models import CheckoutSession, Payment
from billing.services.payment_transitions import (
    _checkout_transition,
    payment_apply_checkout,
    payment_apply_intent,
    payment_transition,
)
from billing.services.refunds import payment_refund
from core.actors import Actor
from core.audit import audit_record
from core.errors import ApiError, Conflict
from stripe_gateway.gateway import gateway_for, idempotency_key

logger = logging.getLogger(__name__)


def _close(*, payment: Payment, final_status: str) -> Payment:
    """Closes an open payment at Stripe first; marks it closed only when Stripe confirms. If Stripe says it
    succeeded meanwhile, the payment becomes `succeeded` instead."""
    gateway = gateway_for(payment.project)
    if payment.stripe_checkout_session_id:
        try:
            stripe_session = gateway.checkout_session_expire(
                payment.stripe_checkout_session_id, idem=idempotency_key("checkout", payment.pk, "expire")
            )
        except ApiError as exc:
            if exc.code != "provider_invalid_request":  # e.g. "already complete": read what happened instead
                raise
            stripe_session = gateway.checkout_session_retrieve(payment.stripe_checkout_session_id)
        if stripe_session["status"] != "expired":
            return payment_apply_checkout(payment=payment, stripe_session=stripe_session)
    elif payment.stripe_payment_intent_id:
        try:
            intent = gateway.payment_intent_cancel(
                payment.stripe_payment_intent_id, idem=idempotency_key("payment", payment.pk, "cancel")
            )
        except ApiError as exc:
            if exc.code != "provider_invalid_request":
                raise
            intent = gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)
        if intent["status"] != "canceled":
            return payment_apply_intent(payment=payment, intent=intent)
    # Stripe confirmed (or never had the payment: its creation had failed).
    with transaction.atomic():
        payment = payment_transition(payment=payment, allowed_from=Payment.OPEN_STATUSES, status=final_status)
        _checkout_transition(payment=payment, to=CheckoutSession.Status.EXPIRED)
    return payment


def payment_cancel(*, payment: Payment, actor: Actor) -> Payment:
    if not payment.is_open:
        raise Conflict(
            f"Only open payments can be canceled; this one is {payment.status}.", code="payment_not_open"
        )
    payment = _close(payment=payment, final_status=Payment.Status.CANCELED)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="payment.canceled",
            target=payment,
            project=payment.project,
            after={"status": payment.status},
        )
    return payment


def payment_expire(*, payment: Payment) -> Payment:
    """Expires a payment past its TTL. A payment that Stripe reports as paid becomes `succeeded` — and is
    refunded at once when the project asks for it (the abandoned-checkout path of a waiting workflow)."""
    payment = _close(payment=payment, final_status=Payment.Status.EXPIRED)
    if payment.status == Payment.Status.SUCCEEDED and payment.project.refund_late_payments:
        payment = payment_refund(
            payment=payment,
            amount=None,
            reason="Paid after the payment had expired.",
            actor=Actor.system("payment expiry"),
            # One late-payment refund per payment, whichever sweep or retry sends it.
            operation=f"late-payment:{payment.pk}",
        )
    return payment


def payments_expire_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Expires the open payments past their expiry: a test-clock customer's at its clock's time (its expiry is
    on the clock, as its Checkout Session's is at Stripe), however much real time passes while the clock stands."""
    now = now or timezone.now()
    past_due = Q(customer__test_clock__isnull=True, expires_at__lt=now) | Q(
        customer__test_clock__isnull=False, expires_at__lt=F("customer__test_clock__frozen_time")
    )
    due = list(
        Payment.objects.filter(past_due, status__in=Payment.OPEN_STATUSES).select_related(
            "project", "customer__test_clock"
        )[:limit]
    )
    expired = 0
    for payment in due:
        try:
            payment_expire(payment=payment)
            expired += 1
        except ApiError as exc:  # Stripe unavailable: the next sweep tries again
            logger.warning("Could not expire payment %s: %s", payment.pk, exc.code)
    return expired
