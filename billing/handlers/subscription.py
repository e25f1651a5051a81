"""Stripe's `customer.subscription.*` events: the subscription's mirror follows Stripe's."""

from billing.handlers.event import StripeEventIn
from billing.handlers.lookups import gateway_of
from billing.services.subscription_mirror import Ambiguous, subscription_apply, subscription_refetch_and_apply


def subscription_changed(event: StripeEventIn) -> None:
    try:
        subscription_apply(
            account=event.account, stripe_subscription=event.data_object, event_created=event.stripe_created
        )
    except Ambiguous:
        subscription_refetch_and_apply(
            account=event.account,
            gateway=gateway_of(event),
            stripe_subscription_id=event.data_object["id"],
            event_created=event.stripe_created,
        )
