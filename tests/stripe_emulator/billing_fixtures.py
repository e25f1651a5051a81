"""Helpers shared by the billing tests (subscriptions, invoices, proration, dunning, meters, portal): a
customer with a default card, recurring prices, and event lookups. Everything goes through the SDK."""

from __future__ import annotations

import json
from typing import Any

import stripe

from stripe_emulator import Emulator

DAY = 86_400


def customer_with_card(
    client: stripe.StripeClient, card: str = "pm_card_visa", email: str = "a@example.com"
) -> tuple[str, str]:
    """A customer whose ``invoice_settings.default_payment_method`` is ``card``; returns (customer, pm)."""
    customer = client.v1.customers.create({"email": email})
    pm = client.v1.payment_methods.attach(card, {"customer": customer.id})
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm.id}})
    return customer.id, pm.id


def attach_card(client: stripe.StripeClient, customer: str, card: str) -> str:
    return client.v1.payment_methods.attach(card, {"customer": customer}).id


def recurring_price(
    client: stripe.StripeClient,
    amount: int,
    *,
    interval: str = "month",
    interval_count: int = 1,
    product: str | None = None,
    name: str = "Pro",
    meter: str | None = None,
) -> stripe.Price:
    params: dict[str, Any] = {
        "currency": "usd",
        "unit_amount": amount,
        "recurring": {"interval": interval, "interval_count": interval_count},
    }
    if meter is not None:
        params["recurring"].update({"usage_type": "metered", "meter": meter})
    if product is not None:
        params["product"] = product
    else:
        params["product_data"] = {"name": name}
    return client.v1.prices.create(params)


def subscribe(client: stripe.StripeClient, customer: str, price: str, **extra: Any) -> stripe.Subscription:
    return client.v1.subscriptions.create({"customer": customer, "items": [{"price": price}], **extra})


def events(client: stripe.StripeClient, prefix: str = "") -> list[stripe.Event]:
    """All events of the account, oldest first, optionally only types starting with ``prefix``."""
    found = [e for e in client.v1.events.list({"limit": 100}).auto_paging_iter() if e.type.startswith(prefix)]
    return list(reversed(found))


def types(client: stripe.StripeClient, prefix: str = "") -> list[str]:
    return [e.type for e in events(client, prefix)]


def plain(obj: Any) -> Any:
    """An SDK object as plain JSON data, for equality checks."""
    return json.loads(json.dumps(obj.to_dict() if hasattr(obj, "to_dict") else obj, default=str))


def set_billing_settings(emulator: Emulator, api_key: str, **settings: Any) -> dict[str, Any]:
    """``POST /_emulator/billing/settings`` for the account of ``api_key``."""
    body = "&".join(
        f"{k}[]={v}" if isinstance(values, list) else f"{k}={values}"
        for k, values in settings.items()
        for v in (values if isinstance(values, list) else [values])
    )
    response = emulator.handle(
        "POST",
        "/_emulator/billing/settings",
        body=body.encode(),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 200, response.body
    return response.data()


def item_period(sub: Any) -> tuple[int, int]:
    item = sub["items"]["data"][0]
    return item["current_period_start"], item["current_period_end"]
