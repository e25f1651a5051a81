"""Stripe's meter event adjustments (`/v1/billing/meter_event_adjustments`), called through a project's gateway."""

from typing import Any

from stripe_gateway.gateway import StripeGateway


def meter_event_cancel(
    gateway: StripeGateway, *, event_name: str, identifier: str, idem: str
) -> dict[str, Any]:
    """`POST /v1/billing/meter_event_adjustments` of type `cancel`: the meter event `identifier` of the meter
    `event_name` counts no more (Stripe cancels one received within the last 24 hours; it processes the
    adjustment asynchronously, so the answer does not say whether it canceled one). Under the caller's key."""
    params = {"event_name": event_name, "type": "cancel", "cancel": {"identifier": identifier}}
    return gateway.call_dict(
        lambda c: c.v1.billing.meter_event_adjustments.create(params, {"idempotency_key": idem})
    )
