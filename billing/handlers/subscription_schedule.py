"""Stripe's `subscription_schedule.*` events: the change a schedule holds for its next phase is mirrored on its
subscription (`pending_change`); the phase's own effect arrives as the subscription's `customer.subscription.
updated`, applied by `billing.handlers.subscription` like any plan change."""

from billing.handlers.event import StripeEventIn
from billing.services.subscription_schedules import schedule_apply


def subscription_schedule_changed(event: StripeEventIn) -> None:
    schedule_apply(
        account=event.account, stripe_schedule=event.data_object, event_created=event.stripe_created
    )
