"""Checkout Sessions in subscription mode with several recurring prices, as Stripe: a metered price takes no
quantity (and costs nothing at checkout), a licensed one needs one, at most 20 recurring line items; a refused
session stores nothing."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator
from tests.stripe_emulator.billing_fixtures import recurring_price
from tests.stripe_emulator.payments_fixtures import control

OK = "https://shop.example/done"


def _meter(client: stripe.StripeClient) -> str:
    return client.v1.billing.meters.create(
        {
            "display_name": "API calls",
            "event_name": "api_calls",
            "default_aggregation": {"formula": "sum"},
            "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
            "value_settings": {"event_payload_key": "value"},
        }
    ).id


def _session(client: stripe.StripeClient, line_items: list[dict[str, Any]]) -> stripe.checkout.Session:
    return client.v1.checkout.sessions.create(
        {"mode": "subscription", "line_items": line_items, "success_url": OK, "cancel_url": OK}
    )


def test_base_and_metered_prices_make_one_subscription(
    emulator: Emulator, client: stripe.StripeClient
) -> None:
    base = recurring_price(client, 2000, name="Base")
    calls = recurring_price(client, 3, name="Calls", meter=_meter(client))
    session = _session(client, [{"price": base.id, "quantity": 2}, {"price": calls.id}])
    assert session.amount_total == 4000
    items = client.v1.checkout.sessions.line_items.list(session.id).data
    assert [(i.price.id, i.quantity, i.amount_total) for i in items] == [
        (base.id, 2, 4000),
        (calls.id, None, 0),
    ]

    control(emulator, f"/_emulator/checkout/sessions/{session.id}/complete", card="4242424242424242")

    done = client.v1.checkout.sessions.retrieve(session.id)
    subscription = client.v1.subscriptions.retrieve(done.subscription)
    assert [(i.price.id, i.quantity) for i in subscription["items"].data] == [(base.id, 2), (calls.id, None)]
    invoice = client.v1.invoices.retrieve(subscription.latest_invoice)
    assert (invoice.amount_paid, invoice.status) == (4000, "paid")


@pytest.mark.parametrize(
    ("metered_quantity", "base_quantity", "message", "param"),
    [
        (
            3,
            1,
            "Quantity should not be specified where usage_type is `metered`. Remove quantity from `line_items[1]`.",
            "line_items[1][quantity]",
        ),
        (None, None, "Quantity is required. Add `quantity` to `line_items[0]`.", "line_items[0][quantity]"),
    ],
)
def test_quantity_is_refused_on_a_metered_price_and_required_on_the_others(
    client: stripe.StripeClient,
    metered_quantity: int | None,
    base_quantity: int | None,
    message: str,
    param: str,
) -> None:
    base = recurring_price(client, 2000, name="Base")
    calls = recurring_price(client, 3, name="Calls", meter=_meter(client))
    base_item: dict[str, Any] = {"price": base.id}
    calls_item: dict[str, Any] = {"price": calls.id}
    if base_quantity is not None:
        base_item["quantity"] = base_quantity
    if metered_quantity is not None:
        calls_item["quantity"] = metered_quantity
    with pytest.raises(stripe.InvalidRequestError) as refused:
        _session(client, [base_item, calls_item])
    assert (refused.value.user_message, refused.value.param) == (message, param)
    assert client.v1.checkout.sessions.list().data == []


def test_at_most_twenty_recurring_line_items(client: stripe.StripeClient) -> None:
    prices = [recurring_price(client, 100 + i, name=f"Add-on {i}") for i in range(21)]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        _session(client, [{"price": p.id, "quantity": 1} for p in prices])
    assert refused.value.param == "line_items"
    assert "up to 20 line items with recurring prices" in str(refused.value.user_message)
    assert client.v1.checkout.sessions.list().data == []
    assert len(_session(client, [{"price": p.id, "quantity": 1} for p in prices[:20]]).id) > 0
