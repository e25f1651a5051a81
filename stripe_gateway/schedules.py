"""Calls to Stripe's subscription schedules (`/v1/subscription_schedules`) for one account's gateway: a
schedule made from a subscription, its phases replaced, and its release — each write under the idempotency key
the caller derives from the operation."""

from typing import Any

from stripe_gateway.gateway import StripeGateway


def schedule_retrieve(gateway: StripeGateway, schedule_id: str) -> dict[str, Any]:
    return gateway.call_dict(lambda c: c.v1.subscription_schedules.retrieve(schedule_id))


def schedule_from_subscription(gateway: StripeGateway, subscription_id: str, *, idem: str) -> dict[str, Any]:
    """`POST /v1/subscription_schedules` with `from_subscription`: one phase, the current period and items."""
    return gateway.call_dict(
        lambda c: c.v1.subscription_schedules.create(
            {"from_subscription": subscription_id}, {"idempotency_key": idem}
        )
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
