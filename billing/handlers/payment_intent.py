"""Stripe's `payment_intent.*` events: the intent of one of our payments moved."""

from billing.handlers.event import StripeEventIn
from billing.handlers.lookups import payment_for
from billing.services.payment_transitions import payment_apply_intent


def payment_intent_changed(event: StripeEventIn) -> None:
    # An invoice's intent that we cannot place locally is left alone (no Stripe read): the invoice's own
    # events settle its payment, and reconciliation links it if they are lost.
    intent = event.data_object
    payment = payment_for(event, intent=intent.get("id", ""), metadata=intent.get("metadata"))
    if payment is None:
        return
    payment_apply_intent(payment=payment, intent=intent)
