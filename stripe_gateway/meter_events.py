"""Stripe's meter events (`/v1/billing/meter_events`) and their adjustments (`/v1/billing/meter_event_adjustments`),
called through a project's gateway."""

from typing import Any

from stripe_gateway.gateway import StripeGateway


def meter_event_send(
    gateway: StripeGateway,
    *,
    event_name: str,
    stripe_customer: str,
    value: int,
    identifier: str,
    second: int,
    idem: str,
) -> dict[str, Any]:
    """`POST /v1/billing/meter_events`: `value` units for the customer at Unix `second`, under `identifier` (Stripe
    refuses a second event of the same identifier as a duplicate) and the caller's key."""
    params = {
        "event_name": event_name,
        "payload": {"stripe_customer_id": stripe_customer, "value": str(value)},
        "identifier": identifier,
        "timestamp": second,
    }
    return gateway.meter_event_create(params=params, idem=idem)


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
