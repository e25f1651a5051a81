"""Calls to Stripe's subscription schedules (`/v1/subscription_schedules`) for one account's gateway: a
schedule made from a subscription, its phases replaced, and its release — each write under the idempotency key
the caller derives from the operation."""

from typing import Any

from stripe_gateway.gateway import StripeGateway, stripe_id, written_of


def schedule_retrieve(gateway: StripeGateway, schedule_id: str) -> dict[str, Any]:
    return gateway.call_dict(lambda c: c.v1.subscription_schedules.retrieve(schedule_id))


def schedule_from_subscription(gateway: StripeGateway, subscription_id: str, *, idem: str) -> dict[str, Any]:
    """`POST /v1/subscription_schedules` with `from_subscription`: one phase, the current period and items. A
    create Stripe replays (`idem` used before) answers the schedule as it is now, read again: the saved answer
    is the schedule as it was made, and it may have been released since."""
    made = written_of(
        gateway.call(
            lambda c: c.v1.subscription_schedules.create(
                {"from_subscription": subscription_id}, {"idempotency_key": idem}
            )
        )
    )
    return schedule_retrieve(gateway, made.object["id"]) if made.replayed else made.object


def schedule_latest(gateway: StripeGateway, *, customer: str, subscription_id: str) -> dict[str, Any] | None:
    """The newest schedule that drove the subscription (released since, or driving it still); None for none."""
    listed = gateway.list_all("subscription_schedules", {"customer": customer, "limit": 10})
    return next(
        (
            schedule
            for schedule in listed
            if subscription_id
            in (stripe_id(schedule.get("subscription")), stripe_id(schedule.get("released_subscription")))
        ),
        None,
    )


def schedule_update(
    gateway: StripeGateway, schedule_id: str, *, params: dict[str, Any], idem: str
) -> dict[str, Any]:
    """Callers send only phases Stripe does not have yet: a replay means they were changed since (`sent_once`)."""
    return gateway.sent_once(
        lambda c, options: c.v1.subscription_schedules.update(schedule_id, params, options), key=idem
    )


def schedule_release(gateway: StripeGateway, schedule_id: str, *, idem: str) -> dict[str, Any]:
    """`POST …/release`: the subscription carries on as it is, with no change pending."""
    return gateway.call_dict(
        lambda c: c.v1.subscription_schedules.release(schedule_id, {}, {"idempotency_key": idem})
    )
