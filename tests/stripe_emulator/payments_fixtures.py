"""Helpers shared by the payments, refunds, disputes and checkout tests (no fixtures of conftest are
redefined here)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import stripe

from stripe_emulator import Emulator
from stripe_emulator.core.routing import Response


def control(emulator: Emulator, path: str, **form: str) -> Response:
    """POST a test control in-process, form-encoded, without an API key."""
    return emulator.handle(
        "POST",
        path,
        body=urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def event_types(client: stripe.StripeClient) -> list[str]:
    """Every event of the account, oldest first."""
    return [e.type for e in reversed(client.v1.events.list({"limit": 100}).data)]


def events_of(client: stripe.StripeClient, event_type: str) -> list[stripe.Event]:
    return list(reversed(client.v1.events.list({"type": event_type, "limit": 100}).data))


def as_dict(obj: Any) -> Any:
    return obj.to_dict() if hasattr(obj, "to_dict") else obj


def pay(
    client: stripe.StripeClient, payment_method: str = "pm_card_visa", **params: Any
) -> stripe.PaymentIntent:
    """A confirmed PaymentIntent of 20.00 USD (raises stripe.CardError on a decline)."""
    return client.v1.payment_intents.create(
        {"amount": 2000, "currency": "usd", "payment_method": payment_method, "confirm": True, **params}
    )
