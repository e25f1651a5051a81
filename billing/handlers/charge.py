"""Stripe's `charge.refunded`: what a charge of one of our payments says of its refunds."""

from billing.handlers.event import StripeEventIn
from billing.handlers.lookups import payment_for
from billing.services.refunds import payment_apply_charge
from stripe_gateway.gateway import stripe_id


def charge_refunded(event: StripeEventIn) -> None:
    charge = event.data_object
    if charge.get("object") != "charge":
        return
    payment = payment_for(
        event,
        intent=stripe_id(charge.get("payment_intent")),
        metadata=charge.get("metadata"),
        ask_stripe=True,
    )
    if payment is None:
        return
    payment_apply_charge(payment=payment, charge=charge)
