"""A price's ``transform_quantity {divide_by, round}``: the quantity is divided (rounded up or down) before it
is multiplied by the unit amount — in Checkout line items, a subscription's invoices, invoice items, proration,
invoice previews and metered usage — while every line keeps the quantity as sent, as Stripe does."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator

from .billing_fixtures import customer_with_card, item_period, recurring_price
from .conftest import FakeClock
from .payments_fixtures import control

# 25 units at $10.00 a package of 10: 3 packages rounded up, 2 rounded down.
PACKAGES = {"up": 3000, "down": 2000}


def _package_price(
    client: stripe.StripeClient, rounding: str, *, recurring: dict[str, Any] | None = None
) -> stripe.Price:
    params: dict[str, Any] = {
        "currency": "usd",
        "unit_amount": 1000,
        "product_data": {"name": "Seats"},
        "transform_quantity": {"divide_by": 10, "round": rounding},
    }
    if recurring is not None:
        params["recurring"] = recurring
    return client.v1.prices.create(params)


@pytest.mark.parametrize("rounding", ["up", "down"])
def test_checkout_line_items_and_the_paid_invoice_count_packages(
    client: stripe.StripeClient, emulator: Emulator, rounding: str
) -> None:
    price = _package_price(client, rounding, recurring={"interval": "month"})
    assert price.transform_quantity is not None
    assert (price.transform_quantity.divide_by, price.transform_quantity.round) == (10, rounding)
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 25}],
            "success_url": "https://example.com/ok",
        }
    )
    expected = PACKAGES[rounding]
    assert (session.amount_subtotal, session.amount_total) == (expected, expected)
    items = client.v1.checkout.sessions.line_items.list(session.id).data
    assert [(i.quantity, i.amount_subtotal, i.amount_total) for i in items] == [(25, expected, expected)]

    completed = control(
        emulator, f"/_emulator/checkout/sessions/{session.id}/complete", card="4242424242424242"
    ).data()
    invoice = client.v1.invoices.retrieve(completed["invoice"])
    assert (invoice.subtotal, invoice.total, invoice.amount_paid) == (expected, expected, expected)
    assert [(line.quantity, line.amount) for line in invoice.lines.data] == [(25, expected)]


def test_subscription_invoices_renewals_and_previews_count_packages(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    price = _package_price(client, "up", recurring={"interval": "month"})
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": price.id, "quantity": 25}]}
    )
    first = client.v1.invoices.retrieve(sub.latest_invoice)
    assert (first.total, first.amount_paid) == (3000, 3000)
    assert [(line.quantity, line.amount) for line in first.lines.data] == [(25, 3000)]

    preview = client.v1.invoices.create_preview({"subscription": sub.id})
    assert preview.amount_due == 3000
    _, end = item_period(sub)
    emulator.advance(end - emulator.clock.now())
    renewal = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert renewal.id != first.id
    assert (renewal.billing_reason, renewal.total, renewal.status) == ("subscription_cycle", 3000, "paid")
    assert [(line.quantity, line.amount) for line in renewal.lines.data] == [(25, 3000)]


def test_a_quantity_change_prorates_the_packages_and_the_preview_agrees(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    customer, _ = customer_with_card(client)
    price = _package_price(client, "up", recurring={"interval": "month"})
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": price.id, "quantity": 25}]}
    )
    start, end = item_period(sub)
    clock.now = start + (end - start) // 2
    remaining, length = end - int(clock.now), end - start
    # 25 → 31 units: 3 → 4 packages.
    credit, charge = -round(3000 * remaining / length), round(4000 * remaining / length)
    details = {
        "items": [{"id": sub["items"].data[0].id, "quantity": 31}],
        "proration_behavior": "always_invoice",
    }

    preview = client.v1.invoices.create_preview({"subscription": sub.id, "subscription_details": details})
    assert [(line.quantity, line.amount) for line in preview.lines.data] == [(25, credit), (31, charge)]
    assert preview.amount_due == credit + charge

    updated = client.v1.subscriptions.update(sub.id, {**details, "expand": ["latest_invoice"]})
    invoice = updated.latest_invoice
    assert [(line.quantity, line.amount) for line in invoice.lines.data] == [(25, credit), (31, charge)]
    assert (invoice.total, invoice.amount_paid) == (credit + charge, credit + charge)


def test_an_invoice_item_of_a_price_and_quantity_counts_packages(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    price = _package_price(client, "down")
    invoice = client.v1.invoices.create({"customer": customer, "auto_advance": False})
    item = client.v1.invoice_items.create(
        {"customer": customer, "pricing": {"price": price.id}, "quantity": 25, "invoice": invoice.id}
    )
    assert (item.amount, item.quantity) == (2000, 25)
    client.v1.invoice_items.update(item.id, {"quantity": 39})
    assert client.v1.invoices.retrieve(invoice.id).total == 3000


def test_metered_usage_is_divided_before_it_is_billed(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    meter = client.v1.billing.meters.create(
        {
            "display_name": "API calls",
            "event_name": "api_calls",
            "default_aggregation": {"formula": "sum"},
            "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
            "value_settings": {"event_payload_key": "value"},
        }
    )
    customer, _ = customer_with_card(client)
    base = recurring_price(client, 1000, name="Platform")
    # $2.00 per started thousand calls.
    usage = client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 200,
            "product_data": {"name": "API calls"},
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
            "transform_quantity": {"divide_by": 1000, "round": "up"},
        }
    )
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": base.id}, {"price": usage.id}]}
    )
    _, end = item_period(sub)
    client.v1.billing.meter_events.create(
        {"event_name": "api_calls", "payload": {"stripe_customer_id": customer, "value": "2500"}}
    )
    emulator.advance(end - emulator.clock.now())
    renewal = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    usage_line = next(line for line in renewal.lines.data if line.pricing.price_details.price == usage.id)
    assert (usage_line.quantity, usage_line.amount) == (2500, 600)
    assert (renewal.total, renewal.status) == (1600, "paid")
