"""Stripe's `refund.*` and `charge.refund.updated`: a refund's own state."""

from billing.handlers.event import StripeEventIn
from billing.handlers.lookups import payment_for
from billing.services.refunds import refund_mirror
from stripe_gateway.gateway import stripe_id


def refund_changed(event: StripeEventIn) -> None:
    """A refund's own state (its status may be older than what we hold: only forward moves apply)."""
    stripe_refund = event.data_object
    if stripe_refund.get("object") != "refund":
        return
    payment = payment_for(
        event,
        intent=stripe_id(stripe_refund.get("payment_intent")),
        metadata=stripe_refund.get("metadata"),
        ask_stripe=True,
    )
    if payment is None:
        return
    refund_mirror(payment=payment, stripe_refund=stripe_refund)
