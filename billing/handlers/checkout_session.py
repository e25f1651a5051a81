"""Stripe's `checkout.session.*` events: a Checkout Session of one of our payments completed, expired, or its
delayed payment settled."""

import logging

from billing.handlers.event import StripeEventIn
from billing.handlers.lookups import invoice_intent_link_told, payment_for
from billing.models import Payment
from billing.services.payment_transitions import payment_apply_checkout, payment_transition

logger = logging.getLogger(__name__)


def checkout_session_settled(event: StripeEventIn) -> None:
    """`completed`, `expired`, `async_payment_succeeded`: the payment takes the session's outcome."""
    session = event.data_object
    payment = payment_for(event, session=session.get("id", ""), metadata=session.get("metadata"))
    if payment is None:
        logger.info("Checkout session %s is not ours; ignored.", session.get("id"))
        return
    if not payment.stripe_checkout_session_id:
        Payment.objects.filter(pk=payment.pk, stripe_checkout_session_id="").update(
            stripe_checkout_session_id=session["id"]
        )
    payment = payment_apply_checkout(payment=payment, stripe_session=session)
    if payment.stripe_invoice_id and not payment.stripe_payment_intent_id:
        invoice_intent_link_told(event, payment.stripe_invoice_id)


def checkout_session_async_payment_failed(event: StripeEventIn) -> None:
    session = event.data_object
    payment = payment_for(event, session=session.get("id", ""), metadata=session.get("metadata"))
    if payment is None:
        logger.info("Checkout session %s is not ours; ignored.", session.get("id"))
        return
    payment_transition(payment=payment, allowed_from=Payment.OPEN_STATUSES, status=Payment.Status.FAILED)
