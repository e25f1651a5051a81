"""Stripe's `charge.dispute.*` events."""

from billing.handlers.event import StripeEventIn
from billing.handlers.lookups import payment_for
from billing.services.refunds import payment_apply_dispute
from stripe_gateway.gateway import stripe_id


def dispute_changed(event: StripeEventIn) -> None:
    """A dispute flags the payment (access is kept meanwhile) and its outcome is recorded. A lost dispute ends
    what the payment granted; a won one returns the payment to its paid status."""
    stripe_dispute = event.data_object
    payment = payment_for(event, intent=stripe_id(stripe_dispute.get("payment_intent")), ask_stripe=True)
    if payment is None:
        return
    payment_apply_dispute(payment=payment, dispute=stripe_dispute)
