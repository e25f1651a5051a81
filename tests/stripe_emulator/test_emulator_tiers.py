"""Tiered prices (graduated, volume): created and validated as Stripe does, `tiers` rendered only under
`expand[]=tiers`, and billed by the tier rule wherever the emulator prices a quantity — Checkout line items,
a subscription's first invoice and its renewal invoices."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator

from .billing_fixtures import DAY, customer_with_card, plain
from .payments_fixtures import control

# 1–10 at $5.00, 11+ at $4.00 plus a $10.00 flat fee for reaching the second tier.
TIERS = [{"up_to": 10, "unit_amount": 500}, {"up_to": "inf", "unit_amount": 400, "flat_amount": 1000}]
RENDERED_TIERS = [
    {
        "flat_amount": None,
        "flat_amount_decimal": None,
        "unit_amount": 500,
        "unit_amount_decimal": "500",
        "up_to": 10,
    },
    {
        "flat_amount": 1000,
        "flat_amount_decimal": "1000",
        "unit_amount": 400,
        "unit_amount_decimal": "400",
        "up_to": None,
    },
]
# quantity → (graduated, volume)
AMOUNTS = {
    1: (500, 500),
    10: (5000, 5000),
    11: (5000 + 400 + 1000, 11 * 400 + 1000),
    15: (5000 + 5 * 400 + 1000, 15 * 400 + 1000),
}


def _tiered(client: stripe.StripeClient, mode: str, **extra: Any) -> stripe.Price:
    params: dict[str, Any] = {
        "currency": "usd",
        "product_data": {"name": "Seats"},
        "recurring": {"interval": "month"},
        "billing_scheme": "tiered",
        "tiers_mode": mode,
        "tiers": TIERS,
        **extra,
    }
    return client.v1.prices.create(params)


def test_a_tiered_price_renders_tiers_only_when_expanded(client: stripe.StripeClient) -> None:
    price = _tiered(client, "graduated")
    created = plain(price)
    assert "tiers" not in created
    assert (created["billing_scheme"], created["tiers_mode"]) == ("tiered", "graduated")
    assert (created["unit_amount"], created["unit_amount_decimal"]) == (None, None)

    assert "tiers" not in plain(client.v1.prices.retrieve(price.id))
    expanded = client.v1.prices.retrieve(price.id, {"expand": ["tiers"]})
    assert plain(expanded)["tiers"] == RENDERED_TIERS
    listed = client.v1.prices.list({"expand": ["data.tiers"]}).data
    assert plain(listed[0])["tiers"] == RENDERED_TIERS
    assert "tiers" not in plain(client.v1.prices.list().data[0])
    # A per-unit price has no tiers, expanded or not.
    flat = client.v1.prices.create({"currency": "usd", "unit_amount": 100, "product": price.product})
    assert plain(client.v1.prices.retrieve(flat.id, {"expand": ["tiers"]}))["tiers"] is None


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tiers_mode": None}, "tiers_mode"),
        ({"tiers": None}, "tiers"),
        ({"unit_amount": 500}, "unit_amount"),
        ({"tiers": [{"up_to": 10, "unit_amount": 500}]}, "tiers[0][up_to]"),
        (
            {"tiers": [{"up_to": "inf", "unit_amount": 1}, {"up_to": "inf", "unit_amount": 1}]},
            "tiers[0][up_to]",
        ),
        (
            {
                "tiers": [
                    {"up_to": 10, "unit_amount": 5},
                    {"up_to": 5, "unit_amount": 4},
                    {"up_to": "inf", "unit_amount": 3},
                ]
            },
            "tiers[1][up_to]",
        ),
        ({"tiers": [{"up_to": 10, "unit_amount": 5}, {"up_to": "inf"}]}, "tiers[1]"),
        (
            {"tiers": [{"up_to": 10, "unit_amount": -5}, {"up_to": "inf", "unit_amount": 4}]},
            "tiers[0][unit_amount]",
        ),
        (
            {"tiers": [{"up_to": 10, "unit_amount": 5, "price": 1}, {"up_to": "inf", "unit_amount": 4}]},
            "tiers[0][price]",
        ),
        ({"transform_quantity": {"divide_by": 10, "round": "up"}}, "transform_quantity"),
    ],
)
def test_invalid_tiered_prices_are_refused_and_nothing_is_created(
    client: stripe.StripeClient, extra: dict[str, Any], param: str
) -> None:
    params = {k: v for k, v in {"tiers_mode": "graduated", "tiers": TIERS, **extra}.items() if v is not None}
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.prices.create(
            {
                "currency": "usd",
                "product_data": {"name": "Seats"},
                "recurring": {"interval": "month"},
                "billing_scheme": "tiered",
                **params,
            }
        )
    assert caught.value.param == param
    assert client.v1.prices.list().data == []
    assert client.v1.products.list().data == []


def test_tiers_need_billing_scheme_tiered(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.prices.create(
            {"currency": "usd", "product_data": {"name": "Seats"}, "tiers_mode": "volume", "tiers": TIERS}
        )
    assert caught.value.param == "tiers_mode"
    assert client.v1.prices.list().data == []


@pytest.mark.parametrize("mode", ["graduated", "volume"])
@pytest.mark.parametrize("quantity", sorted(AMOUNTS))
def test_checkout_line_items_and_total_follow_the_tiers(
    client: stripe.StripeClient, mode: str, quantity: int
) -> None:
    price = _tiered(client, mode)
    expected = AMOUNTS[quantity][mode == "volume"]
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": quantity}],
            "success_url": "https://example.com/ok",
        }
    )
    assert (session.amount_subtotal, session.amount_total) == (expected, expected)
    items = client.v1.checkout.sessions.line_items.list(session.id).data
    assert [(i.quantity, i.amount_subtotal, i.amount_total) for i in items] == [
        (quantity, expected, expected)
    ]


@pytest.mark.parametrize(("mode", "expected"), [("graduated", 8000), ("volume", 7000)])
def test_subscription_invoices_follow_the_tiers(
    client: stripe.StripeClient, emulator: Emulator, mode: str, expected: int
) -> None:
    customer, _ = customer_with_card(client)
    price = _tiered(client, mode)
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": price.id, "quantity": 15}]}
    )
    assert sub.status == "active"
    first = client.v1.invoices.retrieve(sub.latest_invoice)
    assert (first.subtotal, first.total, first.amount_paid) == (expected, expected, expected)
    lines = client.v1.invoices.line_items.list(first.id).data
    assert [(line.quantity, line.amount) for line in lines] == [(15, expected)]
    assert lines[0].description == f"15 × Seats ({mode} tiers / month)"

    emulator.advance(32 * DAY)
    renewal = client.v1.invoices.list({"subscription": sub.id}).data[0]
    assert renewal.id != first.id
    assert (renewal.billing_reason, renewal.total, renewal.status) == ("subscription_cycle", expected, "paid")


def test_the_hosted_checkout_page_shows_a_tiered_line(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    price = _tiered(client, "volume")
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 15}],
            "success_url": "https://example.com/ok",
        }
    )
    page = emulator.handle("GET", f"/checkout/pay/{session.id}").body.decode()
    assert "Qty 15 · volume tiers" in page
    assert "$70.00" in page
    completed = control(
        emulator, f"/_emulator/checkout/sessions/{session.id}/complete", card="4242424242424242"
    ).data()
    invoice = client.v1.invoices.retrieve(completed["invoice"])
    assert (invoice.total, invoice.amount_paid) == (7000, 7000)
