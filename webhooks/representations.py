"""API representations of endpoints, events and deliveries (also the payload of `webhook_endpoint.*` events)."""

from typing import Any

from webhooks.models import Delivery, Event, WebhookEndpoint


def endpoint_representation(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.pk,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "events": endpoint.events,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason or None,
        "failing_since": endpoint.failing_since.isoformat() if endpoint.failing_since else None,
        "created_at": endpoint.created_at.isoformat(),
    }


def delivery_representation(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.pk,
        "endpoint": delivery.endpoint_id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at.isoformat() if delivery.next_attempt_at else None,
        "last_attempt_at": delivery.last_attempt_at.isoformat() if delivery.last_attempt_at else None,
    }


def event_representation(event: Event, *, with_deliveries: bool = False) -> dict[str, Any]:
    from webhooks.outbound import event_payload

    data = event_payload(event)
    if with_deliveries:
        data["deliveries"] = [delivery_representation(d) for d in event.deliveries.order_by("created_at")]
    return data
