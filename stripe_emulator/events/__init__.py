"""Events (``/v1/events``) and webhook endpoints (``/v1/webhook_endpoints``)."""

from stripe_emulator.core.account import Account
from stripe_emulator.core.render import render
from stripe_emulator.core.service import Service, Shape
from stripe_emulator.core.store import StripeObject
from stripe_emulator.events.models import EventsBackend, WebhookEndpointsBackend
from stripe_emulator.events.urls import ROUTES


def _endpoint(account: Account) -> StripeObject:
    backend = account.backend(WebhookEndpointsBackend)
    return render(account, backend.endpoint_create(url="http://127.0.0.1:9/hook", enabled_events=["*"]))


def _deleted_endpoint(account: Account) -> StripeObject:
    backend = account.backend(WebhookEndpointsBackend)
    endpoint = backend.endpoint_create(url="http://127.0.0.1:9/hook", enabled_events=["*"])
    return render(account, backend.endpoint_delete(endpoint["id"]))


def _event(account: Account) -> StripeObject:
    return render(account, account.emit("customer.created", {"id": "cus_shape", "object": "customer"}))


SERVICE = Service(
    name="events",
    routes=ROUTES,
    shapes=[
        Shape("webhook_endpoint", "webhook_endpoint", _endpoint),
        Shape("deleted_webhook_endpoint", "deleted_webhook_endpoint", _deleted_endpoint),
        Shape("event", "event", _event),
    ],
)

__all__ = ["SERVICE", "EventsBackend", "WebhookEndpointsBackend"]
