"""Automatic tax (Stripe Tax) with the emulator's deterministic rates (see ``stripe_emulator/tax``): exclusive
and inclusive prices, two taxed countries and an untaxed one, customers without a location, Checkout in both
modes. Exact amounts: tax per line, rounded half away from zero."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator
from tests.stripe_emulator.billing_fixtures import DAY, customer_with_card, plain
from tests.stripe_emulator.conftest import FakeClock
from tests.stripe_emulator.payments_fixtures import control

SUCCESS = "https://shop.example/done"


def _price(
    client: stripe.StripeClient, amount: int, behavior: str | None, *, recurring: bool = True
) -> stripe.Price:
    params: dict[str, Any] = {"currency": "eur", "unit_amount": amount, "product_data": {"name": "Pro"}}
    if recurring:
        params["recurring"] = {"interval": "month"}
    if behavior is not None:
        params["tax_behavior"] = behavior
    return client.v1.prices.create(params)


def _customer_in(client: stripe.StripeClient, country: str | None) -> str:
    customer, _ = customer_with_card(client)
    if country is not None:
        client.v1.customers.update(customer, {"address": {"country": country, "postal_code": "10115"}})
    return customer


def _taxes(invoice: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in t.items() if k != "tax_rate_details"} for t in plain(invoice)["total_taxes"]]


def test_exclusive_tax_on_a_subscription_and_its_renewal(
    emulator: Emulator, client: stripe.StripeClient, clock: FakeClock
) -> None:
    customer = _customer_in(client, "DE")
    price = _price(client, 1900, "exclusive")
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": price.id}], "automatic_tax": {"enabled": True}}
    )
    assert sub.status == "active"
    assert plain(sub)["automatic_tax"] == {
        "disabled_reason": None,
        "enabled": True,
        "liability": {"type": "self"},
    }
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    assert plain(invoice)["automatic_tax"] == {
        "disabled_reason": None,
        "enabled": True,
        "liability": {"type": "self"},
        "provider": "stripe",
        "status": "complete",
    }
    assert _taxes(invoice) == [
        {
            "amount": 361,  # 19 % of 19.00
            "tax_behavior": "exclusive",
            "taxability_reason": "standard_rated",
            "taxable_amount": 1900,
            "type": "tax_rate_details",
        }
    ]
    assert (invoice.subtotal, invoice.subtotal_excluding_tax) == (1900, 1900)
    assert (invoice.total_excluding_tax, invoice.total) == (1900, 2261)
    assert (invoice.amount_due, invoice.amount_paid, invoice.status) == (2261, 2261, "paid")
    line = invoice.lines.data[0]
    assert (line.amount, [t.amount for t in line.taxes]) == (1900, [361])
    rate_id = invoice.total_taxes[0].tax_rate_details.tax_rate
    assert rate_id.startswith("txr_")
    assert line.taxes[0].tax_rate_details.tax_rate == rate_id
    intent = client.v1.payment_intents.list({"customer": customer}).data[0]
    assert intent.amount == 2261

    clock.now += 32 * DAY
    emulator.advance(0)
    renewal = client.v1.invoices.list({"customer": customer}).data[0]
    assert renewal.billing_reason == "subscription_cycle"
    assert (renewal.total, renewal.amount_paid, _taxes(renewal)[0]["amount"]) == (2261, 2261, 361)


def test_inclusive_tax_is_inside_the_amount_rounded_per_line(client: stripe.StripeClient) -> None:
    customer = _customer_in(client, "DE")
    price = _price(client, 999, "inclusive")
    sub = client.v1.subscriptions.create(
        {
            "customer": customer,
            "items": [{"price": price.id, "quantity": 3}],
            "automatic_tax": {"enabled": True},
        }
    )
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    # 29.97 includes 19 %: net round(2997 / 1.19) = 2518, tax 479
    assert _taxes(invoice) == [
        {
            "amount": 479,
            "tax_behavior": "inclusive",
            "taxability_reason": "standard_rated",
            "taxable_amount": 2518,
            "type": "tax_rate_details",
        }
    ]
    assert (invoice.subtotal, invoice.subtotal_excluding_tax) == (2997, 2518)
    assert (invoice.total, invoice.total_excluding_tax, invoice.amount_paid) == (2997, 2518, 2997)


def test_another_country_and_an_untaxed_one(client: stripe.StripeClient) -> None:
    gb = _customer_in(client, "GB")
    price = _price(client, 1200, "inclusive")
    invoice = client.v1.invoices.retrieve(
        client.v1.subscriptions.create(
            {"customer": gb, "items": [{"price": price.id}], "automatic_tax": {"enabled": True}}
        ).latest_invoice
    )
    assert (_taxes(invoice)[0]["amount"], invoice.total, invoice.total_excluding_tax) == (200, 1200, 1000)

    us = _customer_in(client, "US")
    exclusive = _price(client, 1200, "exclusive")
    invoice = client.v1.invoices.retrieve(
        client.v1.subscriptions.create(
            {"customer": us, "items": [{"price": exclusive.id}], "automatic_tax": {"enabled": True}}
        ).latest_invoice
    )
    assert _taxes(invoice) == [
        {
            "amount": 0,
            "tax_behavior": "exclusive",
            "taxability_reason": "not_collecting",
            "taxable_amount": 1200,
            "type": "tax_rate_details",
        }
    ]
    assert invoice.total == 1200


def test_no_location_or_no_tax_behavior_is_refused_and_nothing_is_created(
    client: stripe.StripeClient,
) -> None:
    nowhere = _customer_in(client, None)
    price = _price(client, 1900, "exclusive")
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.subscriptions.create(
            {"customer": nowhere, "items": [{"price": price.id}], "automatic_tax": {"enabled": True}}
        )
    assert refused.value.code == "customer_tax_location_invalid"
    de = _customer_in(client, "DE")
    unspecified = _price(client, 1900, None)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.subscriptions.create(
            {"customer": de, "items": [{"price": unspecified.id}], "automatic_tax": {"enabled": True}}
        )
    assert refused.value.param == "items[0][price]"
    assert client.v1.subscriptions.list({"status": "all"}).data == []
    assert client.v1.invoices.list().data == []

    # A manual invoice can be drafted; Stripe cannot tax it, so it cannot be finalized.
    draft = client.v1.invoices.create({"customer": nowhere, "automatic_tax": {"enabled": True}})
    assert draft.automatic_tax.status == "requires_location_inputs"
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.invoices.finalize_invoice(draft.id)
    assert refused.value.code == "customer_tax_location_invalid"
    assert client.v1.invoices.retrieve(draft.id).status == "draft"


def test_turning_automatic_tax_on_by_update_taxes_the_next_invoice(
    emulator: Emulator, client: stripe.StripeClient, clock: FakeClock
) -> None:
    customer = _customer_in(client, "FR")
    price = _price(client, 1000, "exclusive")
    sub = client.v1.subscriptions.create({"customer": customer, "items": [{"price": price.id}]})
    assert client.v1.invoices.retrieve(sub.latest_invoice).total == 1000
    updated = client.v1.subscriptions.update(sub.id, {"automatic_tax": {"enabled": True}})
    assert updated.automatic_tax.enabled is True
    clock.now += 32 * DAY
    emulator.advance(0)
    renewal = client.v1.invoices.list({"customer": customer}).data[0]
    assert (renewal.total, renewal.total_taxes[0].amount) == (1200, 200)


def _complete(emulator: Emulator, session_id: str, **form: str) -> Any:
    response = control(emulator, f"/_emulator/checkout/sessions/{session_id}/complete", **form)
    assert response.status == 200, response.body
    return response.data()


def test_checkout_payment_mode_collects_the_address_and_charges_the_tax(
    emulator: Emulator, client: stripe.StripeClient
) -> None:
    customer = client.v1.customers.create({"email": "b@example.com"}).id
    price = _price(client, 1500, "exclusive", recurring=False)
    base: dict[str, Any] = {
        "mode": "payment",
        "customer": customer,
        "line_items": [{"price": price.id, "quantity": 2}],
        "success_url": SUCCESS,
        "automatic_tax": {"enabled": True},
    }
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(base)
    assert refused.value.param == "customer_update[address]"
    assert client.v1.checkout.sessions.list().data == []

    session = client.v1.checkout.sessions.create({**base, "customer_update": {"address": "auto"}})
    assert session.automatic_tax.status == "requires_location_inputs"
    assert (session.amount_total, session.total_details.amount_tax) == (3000, 0)
    refused_page = control(emulator, f"/_emulator/checkout/sessions/{session.id}/complete")
    assert refused_page.status == 400
    done = _complete(emulator, session.id, **{"address[country]": "FR", "address[postal_code]": "75001"})
    assert done["status"] == "complete"
    assert done["automatic_tax"]["status"] == "complete"
    assert (done["amount_subtotal"], done["total_details"]["amount_tax"], done["amount_total"]) == (
        3000,
        600,
        3600,
    )
    assert done["customer_details"]["address"]["country"] == "FR"
    assert client.v1.payment_intents.retrieve(done["payment_intent"]).amount == 3600
    assert client.v1.customers.retrieve(customer).address.country == "FR"
    expanded = client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["total_details.breakdown", "line_items.data.taxes"]}
    )
    breakdown = expanded.total_details.breakdown.taxes
    assert [(t.amount, t.taxable_amount, t.rate.percentage, t.rate.country) for t in breakdown] == [
        (600, 3000, 20.0, "FR")
    ]
    item = expanded.line_items.data[0]
    assert (item.amount_subtotal, item.amount_tax, item.amount_total, item.taxes[0].amount) == (
        3000,
        600,
        3600,
        600,
    )


def test_checkout_subscription_mode_taxes_the_first_invoice(
    emulator: Emulator, client: stripe.StripeClient
) -> None:
    price = _price(client, 1000, "inclusive")
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer_email": "c@example.com",
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": SUCCESS,
            "automatic_tax": {"enabled": True},
            "billing_address_collection": "required",
        }
    )
    done = _complete(emulator, session.id, **{"address[country]": "NL"})
    # 10.00 includes 21 %: net round(1000 / 1.21) = 826, tax 174
    assert (done["amount_total"], done["total_details"]["amount_tax"]) == (1000, 174)
    sub = client.v1.subscriptions.retrieve(done["subscription"])
    assert sub.automatic_tax.enabled is True
    invoice = client.v1.invoices.retrieve(done["invoice"])
    assert (invoice.total, invoice.total_taxes[0].amount, invoice.amount_paid) == (1000, 174, 1000)
    assert client.v1.customers.retrieve(done["customer"]).address.country == "NL"
