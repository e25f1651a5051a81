"""``/v1/invoiceitems`` through the SDK: items of an ``amount`` or of ``pricing[price]`` × quantity, on a draft
invoice or pending until the customer's next invoice (a manual one with ``pending_invoice_items_behavior``,
a subscription's first invoice, a renewal), update and delete following the draft's lines, list filters, and
what this API version refuses (the top-level ``price``)."""

from __future__ import annotations

import pytest
import stripe

from stripe_emulator import Emulator
from tests.stripe_emulator.billing_fixtures import DAY, customer_with_card, recurring_price, subscribe
from tests.stripe_emulator.payments_fixtures import as_dict, event_types


def _one_time_price(client: stripe.StripeClient, amount: int = 700) -> stripe.Price:
    return client.v1.prices.create(
        {"currency": "usd", "unit_amount": amount, "product_data": {"name": "Setup fee"}}
    )


def _line_items(client: stripe.StripeClient, invoice: str) -> list[tuple[str | None, int]]:
    lines = client.v1.invoices.line_items.list(invoice).data
    return sorted((line.description, line.amount) for line in lines)


def test_create_retrieve_update_delete_a_pending_item(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    item = client.v1.invoice_items.create(
        {
            "customer": customer,
            "amount": 1500,
            "currency": "usd",
            "description": "Onboarding",
            "metadata": {"ref": "A1"},
            "period": {"start": 1_800_000_000, "end": 1_800_086_400},
        }
    )
    assert item.id.startswith("ii_")
    assert (item.amount, item.currency, item.quantity, item.invoice) == (1500, "usd", 1, None)
    assert (item.period.start, item.period.end) == (1_800_000_000, 1_800_086_400)
    assert item.pricing is not None
    assert item.pricing.price_details is None
    assert item.proration is False
    assert item.discountable is True
    assert as_dict(item.metadata) == {"ref": "A1"}
    assert client.v1.invoice_items.retrieve(item.id).description == "Onboarding"

    updated = client.v1.invoice_items.update(item.id, {"amount": 1800, "description": "Onboarding (2h)"})
    assert (updated.amount, updated.description) == (1800, "Onboarding (2h)")
    price = _one_time_price(client)
    repriced = client.v1.invoice_items.update(item.id, {"pricing": {"price": price.id}, "quantity": 3})
    assert (repriced.amount, repriced.quantity) == (2100, 3)
    assert repriced.pricing is not None
    assert repriced.pricing.price_details is not None
    assert repriced.pricing.price_details.price == price.id

    deleted = client.v1.invoice_items.delete(item.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as gone:
        client.v1.invoice_items.retrieve(item.id)
    assert gone.value.code == "resource_missing"
    types = event_types(client)
    assert types.count("invoiceitem.created") == 1
    assert types[-1] == "invoiceitem.deleted"
    assert "invoiceitem.updated" not in types  # Stripe sends no event for updates


def test_price_times_quantity_onto_a_draft_invoice(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    invoice = client.v1.invoices.create({"customer": customer, "auto_advance": False})
    price = _one_time_price(client, 700)
    item = client.v1.invoice_items.create(
        {"customer": customer, "pricing": {"price": price.id}, "quantity": 2, "invoice": invoice.id}
    )
    assert (item.amount, item.quantity, item.invoice) == (1400, 2, invoice.id)
    assert client.v1.invoices.retrieve(invoice.id).total == 1400
    line = client.v1.invoices.line_items.list(invoice.id).data[0]
    assert line.amount == 1400
    assert line.parent is not None
    assert line.parent.invoice_item_details is not None
    assert line.parent.invoice_item_details.invoice_item == item.id

    client.v1.invoice_items.update(item.id, {"quantity": 3})
    assert client.v1.invoices.retrieve(invoice.id).total == 2100
    client.v1.invoice_items.create({"customer": customer, "amount": -500, "invoice": invoice.id})
    assert client.v1.invoices.retrieve(invoice.id).total == 1600

    client.v1.invoice_items.delete(item.id)
    assert client.v1.invoices.retrieve(invoice.id).total == -500
    finalized = client.v1.invoices.finalize_invoice(invoice.id)
    assert finalized.status == "paid"  # a credit: nothing to collect
    remaining = client.v1.invoice_items.list({"invoice": invoice.id}).data[0]
    with pytest.raises(stripe.InvalidRequestError) as frozen:
        client.v1.invoice_items.update(remaining.id, {"amount": 100})
    assert frozen.value.code == "invoice_not_editable"
    with pytest.raises(stripe.InvalidRequestError) as not_draft:
        client.v1.invoice_items.create({"customer": customer, "amount": 100, "invoice": invoice.id})
    assert (not_draft.value.code, not_draft.value.param) == ("invoice_not_editable", "invoice")


def test_a_drafts_line_changes_in_place_and_the_draft_says_so(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    invoice = client.v1.invoices.create({"customer": customer, "auto_advance": False})
    first = client.v1.invoice_items.create(
        {"customer": customer, "amount": 1000, "description": "Setup", "invoice": invoice.id}
    )
    client.v1.invoice_items.create(
        {"customer": customer, "amount": 300, "description": "Travel", "invoice": invoice.id}
    )
    before = [
        (line.id, line.description, line.amount)
        for line in client.v1.invoices.retrieve(invoice.id).lines.data
    ]

    client.v1.invoice_items.update(first.id, {"amount": 1200, "description": "Setup (2h)"})
    after = client.v1.invoices.retrieve(invoice.id)
    assert [(line.id, line.description, line.amount) for line in after.lines.data] == [
        (before[0][0], "Setup (2h)", 1200),
        before[1],
    ]
    listed = client.v1.invoices.line_items.list(invoice.id).data
    assert sorted((line.id, line.amount) for line in listed) == sorted(
        [(before[0][0], 1200), (before[1][0], 300)]
    )
    assert after.total == 1500

    client.v1.invoice_items.delete(first.id)
    assert client.v1.invoices.retrieve(invoice.id).total == 300
    updates = [
        event.data.previous_attributes
        for event in reversed(client.v1.events.list({"type": "invoice.updated", "limit": 10}).data)
    ]
    # Each change of the draft's lines: the add of the second item, the update, the delete (the first item's
    # add changed a draft whose totals were 0 and 1000 at once: announced too).
    assert [as_dict(previous)["total"] for previous in updates] == [0, 1000, 1300, 1500]
    assert event_types(client)[-2:] == ["invoice.updated", "invoiceitem.deleted"]
    # A deleted item is gone from what later invoices pull in and from a deleted draft's items: a subscription
    # made now bills its plan alone, and deleting a draft frees its items.
    subscription = subscribe(client, customer, recurring_price(client, 900).id)
    first = client.v1.invoices.retrieve(str(subscription.latest_invoice))
    assert [line.amount for line in first.lines.data] == [900]
    client.v1.invoices.delete(invoice.id)
    assert client.v1.invoice_items.list({"customer": customer, "pending": True}).data[0].amount == 300


def test_a_manual_invoice_pulls_pending_items_when_asked(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    client.v1.invoice_items.create({"customer": customer, "amount": 1000, "description": "Consulting"})
    client.v1.invoice_items.create({"customer": customer, "amount": 250, "description": "Travel"})
    excluded = client.v1.invoices.create({"customer": customer, "auto_advance": False})
    assert excluded.total == 0
    assert len(client.v1.invoice_items.list({"customer": customer, "pending": True}).data) == 2
    invoice = client.v1.invoices.create(
        {"customer": customer, "pending_invoice_items_behavior": "include", "auto_advance": False}
    )
    assert invoice.total == 1250
    assert _line_items(client, invoice.id) == [("Consulting", 1000), ("Travel", 250)]
    assert client.v1.invoice_items.list({"customer": customer, "pending": True}).data == []
    assert len(client.v1.invoice_items.list({"invoice": invoice.id}).data) == 2


def test_subscription_invoices_pull_the_customers_pending_items(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    price = recurring_price(client, 2000)
    client.v1.invoice_items.create({"customer": customer, "amount": 500, "description": "Setup"})
    sub = subscribe(client, customer, price.id)
    first = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert (first.total, first.status) == (2500, "paid")
    assert ("Setup", 500) in _line_items(client, first.id)

    client.v1.invoice_items.create(
        {"customer": customer, "amount": 300, "description": "Extra seat", "subscription": sub.id}
    )
    client.v1.invoice_items.create({"customer": customer, "amount": 100, "currency": "eur"})  # other currency
    emulator.advance(32 * DAY)
    renewal = client.v1.invoices.retrieve(str(client.v1.subscriptions.retrieve(sub.id).latest_invoice))
    assert renewal.billing_reason == "subscription_cycle"
    assert renewal.total == 2300
    assert ("Extra seat", 300) in _line_items(client, renewal.id)
    pending = client.v1.invoice_items.list({"customer": customer, "pending": True}).data
    assert [(i.amount, i.currency) for i in pending] == [(100, "eur")]


def test_refusals(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    price = _one_time_price(client)
    monthly = recurring_price(client, 900)
    other, _ = customer_with_card(client, email="b@example.com")
    other_sub = subscribe(client, other, monthly.id)
    cases: list[tuple[dict[str, object], str]] = [
        ({"customer": customer, "price": price.id}, "price"),  # the pre-basil top-level price
        ({"amount": 100, "currency": "usd"}, "customer"),
        ({"customer": customer}, "amount"),
        ({"customer": customer, "amount": 100, "pricing": {"price": price.id}}, "amount"),
        ({"customer": customer, "amount": 100, "quantity": 2}, "quantity"),
        ({"customer": customer, "pricing": {"price": monthly.id}}, "pricing[price]"),
        ({"customer": customer, "pricing": {"price": "price_missing"}}, "pricing[price]"),
        ({"customer": customer, "pricing": {"price": price.id}, "currency": "eur"}, "currency"),
        ({"customer": customer, "amount": 100, "subscription": other_sub.id}, "subscription"),
        ({"customer": customer, "amount": 100, "period": {"start": 20, "end": 10}}, "period[end]"),
        ({"customer": "cus_missing", "amount": 100}, "customer"),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.invoice_items.create(params)  # type: ignore[arg-type]
        assert refused.value.param == param, params
    assert client.v1.invoice_items.list({"customer": customer}).data == []


def test_price_data_and_list_pagination(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    product = client.v1.products.create({"name": "Support hours"})
    made = client.v1.invoice_items.create(
        {
            "customer": customer,
            "price_data": {"currency": "usd", "product": product.id, "unit_amount": 4000},
            "quantity": 2,
        }
    )
    assert made.amount == 8000
    assert made.pricing is not None
    assert made.pricing.price_details is not None
    assert made.pricing.price_details.product == product.id
    for amount in (100, 200):
        client.v1.invoice_items.create({"customer": customer, "amount": amount})
    page = client.v1.invoice_items.list({"customer": customer, "limit": 2})
    assert [i.amount for i in page.data] == [200, 100]
    assert page.has_more is True
    assert [i.amount for i in client.v1.invoice_items.list({"customer": customer}).auto_paging_iter()] == [
        200,
        100,
        8000,
    ]
