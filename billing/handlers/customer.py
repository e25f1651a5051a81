"""Stripe's `customer.updated` and `customer.deleted`: the link between a Stripe customer and the tenant's."""

from billing.handlers.event import StripeEventIn
from customers.services.customers import customer_for_stripe, customer_stripe_unlink


def customer_updated(event: StripeEventIn) -> None:
    """Links a Stripe customer created outside our API (e.g. by Checkout) to the tenant's customer through our
    metadata."""
    stripe_customer = event.data_object
    customer_for_stripe(
        account=event.account,
        stripe_customer_id=stripe_customer.get("id", ""),
        metadata=stripe_customer.get("metadata"),
    )


def customer_deleted(event: StripeEventIn) -> None:
    """A customer deleted at Stripe is unlinked (once linked through our metadata), so the next purchase
    creates a new one."""
    stripe_customer = event.data_object
    local = customer_for_stripe(
        account=event.account,
        stripe_customer_id=stripe_customer.get("id", ""),
        metadata=stripe_customer.get("metadata"),
    )
    if local is not None:
        customer_stripe_unlink(customer=local, stripe_customer_id=stripe_customer["id"])
