"""Tollgate's webhook endpoint at a Stripe account, registered at the pinned API version, and the object a Stripe
event names read again at that version.

Stripe renders an endpoint's events at the endpoint's `api_version`, or at the account's default version for an
endpoint registered without one (an adopted account's default is often years old: fields Tollgate reads would be
missing). An endpoint's version cannot be changed: another endpoint is created at the pinned version and the old
one deleted once the new signing secret is stored (`webhooks.services.endpoints`). An event rendered at
another version is never applied from its body: its object is read again here (what Stripe recommends).
"""

from typing import Any, NamedTuple

from django.conf import settings

from stripe_gateway.errors import StripeObjectMissing
from stripe_gateway.gateway import StripeGateway, idempotency_key

# The objects the handled events are about, by their `object`, and the SDK's service that retrieves each.
READABLE = {
    "checkout.session": "checkout.sessions",
    "charge": "charges",
    "credit_note": "credit_notes",
    "customer": "customers",
    "dispute": "disputes",
    "invoice": "invoices",
    "invoice_payment": "invoice_payments",
    "payment_intent": "payment_intents",
    "refund": "refunds",
    "subscription": "subscriptions",
    "subscription_schedule": "subscription_schedules",
}


class EndpointEnsured(NamedTuple):
    """The endpoint for the URL at the pinned version (its `secret` only when `created` now: Stripe shows it
    once), and the endpoints for the URL at another version (or the account's default), to delete once the new
    secret is stored."""

    endpoint: dict[str, Any]
    created: bool
    stale: list[dict[str, Any]]


def webhook_endpoint_ensure(
    gateway: StripeGateway, *, url: str, events: list[str], description: str
) -> EndpointEnsured:
    """Finds the endpoint registered for `url` at the pinned API version (its event types brought up to date), or
    creates it; an endpoint for `url` at another version is left for the caller to delete (`stale`)."""
    version = settings.STRIPE_API_VERSION
    found = [endpoint for endpoint in gateway.list_all("webhook_endpoints") if endpoint.get("url") == url]
    stale = [endpoint for endpoint in found if endpoint.get("api_version") != version]
    for endpoint in found:
        if endpoint.get("api_version") == version:
            if sorted(endpoint.get("enabled_events") or []) != sorted(events):
                wanted = sorted(events)
                gateway.webhook_endpoint_update(endpoint["id"], params={"enabled_events": wanted})
            return EndpointEnsured(endpoint, False, stale)
    params = {"url": url, "enabled_events": events, "description": description, "api_version": version}
    key = idempotency_key("webhook-endpoint", url, version)
    created = gateway.call_dict(lambda c: c.v1.webhook_endpoints.create(params, {"idempotency_key": key}))
    return EndpointEnsured(created, True, stale)


def webhook_endpoint_delete(gateway: StripeGateway, endpoint_id: str) -> None:
    """Deletes an endpoint (DELETE takes no idempotency key at Stripe; one deleted already counts as done)."""
    try:
        gateway.call_dict(lambda c: c.v1.webhook_endpoints.delete(endpoint_id))
    except StripeObjectMissing:
        return


def stripe_object_read(gateway: StripeGateway, *, object_type: str, object_id: str) -> dict[str, Any] | None:
    """The object as Stripe renders it now at the pinned version; None for a type that cannot be read here."""
    resource = READABLE.get(object_type)
    if resource is None or not object_id:
        return None

    def retrieve(client: Any) -> Any:
        service = client.v1
        for part in resource.split("."):
            service = getattr(service, part)
        return service.retrieve(object_id)

    return gateway.call_dict(retrieve)
