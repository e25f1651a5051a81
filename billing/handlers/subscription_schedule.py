"""Stripe's `subscription_schedule.*` events: the change a schedule holds for its next phase is mirrored on its
subscription (`pending_change`); the phase's own effect arrives as the subscription's `customer.subscription.
updated`, applied by `billing.handlers.subscription` like any plan change. Two events of one schedule in the same
second that disagree are settled by reading the schedule from Stripe."""

from billing.handlers.event import StripeEventIn
from billing.handlers.lookups import gateway_of
from billing.services.subscription_schedules import ScheduleAmbiguous, schedule_apply
from stripe_gateway.schedules import schedule_retrieve


def subscription_schedule_changed(event: StripeEventIn) -> None:
    try:
        schedule_apply(
            account=event.account, stripe_schedule=event.data_object, event_created=event.stripe_created
        )
    except ScheduleAmbiguous:
        schedule_apply(
            account=event.account,
            stripe_schedule=schedule_retrieve(gateway_of(event), event.data_object["id"]),
            event_created=event.stripe_created,
            force=True,
        )
