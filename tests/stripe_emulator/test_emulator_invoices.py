"""Invoices: the amount invariants, lines, invoice payments, transitions (finalize, pay, void,
mark_uncollectible), manual invoices, and the hosted page and PDF."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator

from .billing_fixtures import DAY, attach_card, customer_with_card, plain, recurring_price, subscribe, types
from .conftest import KEY_A, FakeClock


def _check_invariants(invoice: Any) -> None:
    assert invoice["amount_remaining"] == invoice["amount_due"] - invoice["amount_paid"]
    assert invoice["subtotal"] == invoice["total"] == sum(line["amount"] for line in invoice["lines"]["data"])
    assert 0 <= invoice["amount_paid"] <= invoice["amount_due"]


def test_invariants_hold_for_every_invoice_and_every_invoice_event(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    customer, _ = customer_with_card(client)
    basic = recurring_price(client, 3000, name="Basic")
    premium = recurring_price(client, 6000, product=basic.product)
    sub = subscribe(client, customer, basic.id)
    clock.now += 10 * DAY
    client.v1.subscriptions.update(sub.id, {"items": [{"id": sub["items"].data[0].id, "price": premium.id}]})
    failing = attach_card(client, customer, "pm_card_chargeCustomerFail")
    client.v1.subscriptions.update(sub.id, {"default_payment_method": failing})
    emulator.advance(60 * DAY)
    invoices = client.v1.invoices.list({"customer": customer, "limit": 100}).data
    assert len(invoices) >= 2
    for invoice in invoices:
        _check_invariants(plain(invoice))
        lines = client.v1.invoices.line_items.list(invoice.id, {"limit": 100}).data
        assert sum(line.amount for line in lines) == invoice.subtotal
    for event in client.v1.events.list({"type": "invoice.*", "limit": 100}).auto_paging_iter():
        _check_invariants(plain(event.data.object))


def test_line_shape_and_list_pagination(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    a, b = recurring_price(client, 1000, name="A"), recurring_price(client, 250, name="B")
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": a.id}, {"price": b.id, "quantity": 4}]}
    )
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    assert invoice.total == 2000
    assert invoice.parent.subscription_details.subscription == sub.id
    # Gone from the top level at this version: only `parent.subscription_details` names the subscription.
    assert "subscription" not in plain(invoice)
    assert [i.id for i in client.v1.invoices.list({"subscription": sub.id}).data] == [invoice.id]
    first = client.v1.invoices.line_items.list(invoice.id, {"limit": 1})
    assert first.has_more
    assert len(first.data) == 1
    second = client.v1.invoices.line_items.list(invoice.id, {"limit": 1, "starting_after": first.data[0].id})
    assert not second.has_more
    assert second.data[0].id != first.data[0].id
    line = next(line for line in invoice.lines.data if line.quantity == 4)
    assert line.amount == 1000
    assert line.pricing.type == "price_details"
    assert line.pricing.price_details.price == b.id
    assert line.parent.type == "subscription_item_details"
    assert line.parent.subscription_item_details.subscription == sub.id


def test_invoice_payments_list_and_retrieve(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    sub = subscribe(client, customer, recurring_price(client, 1500).id)
    payments = client.v1.invoice_payments.list({"invoice": sub.latest_invoice}).data
    assert len(payments) == 1
    record = client.v1.invoice_payments.retrieve(payments[0].id)
    assert (record.status, record.amount_paid, record.amount_requested, record.is_default) == (
        "paid",
        1500,
        1500,
        True,
    )
    assert record.status_transitions.paid_at is not None
    assert client.v1.invoice_payments.list({"status": "open"}).data == []
    assert "invoice_payment.paid" in types(client)
    by_pi = client.v1.invoice_payments.list(
        {"payment": {"type": "payment_intent", "payment_intent": record.payment.payment_intent}}
    ).data
    assert [p.id for p in by_pi] == [record.id]


def test_list_filters(client: stripe.StripeClient, emulator: Emulator) -> None:
    a, _ = customer_with_card(client, email="a@example.com")
    b, _ = customer_with_card(client, "pm_card_chargeCustomerFail", email="b@example.com")
    price = recurring_price(client, 700)
    sa = subscribe(client, a, price.id)
    sb = subscribe(client, b, price.id)
    assert [i.id for i in client.v1.invoices.list({"customer": a}).data] == [sa.latest_invoice]
    assert [i.id for i in client.v1.invoices.list({"subscription": sb.id}).data] == [sb.latest_invoice]
    assert [i.id for i in client.v1.invoices.list({"status": "open"}).data] == [sb.latest_invoice]
    assert {i.id for i in client.v1.invoices.list({"status": "paid"}).data} == {sa.latest_invoice}


def test_manual_invoice_finalize_void_and_uncollectible(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    draft = client.v1.invoices.create(
        {"customer": customer, "collection_method": "send_invoice", "days_until_due": 7}
    )
    assert draft.status == "draft"
    assert draft.number is None
    assert draft.total == 0
    assert draft.billing_reason == "manual"
    deleted = client.v1.invoices.delete(draft.id)
    assert deleted.deleted
    basic = recurring_price(client, 3000, name="Basic")
    premium = recurring_price(client, 6000, product=basic.product)
    sub = subscribe(client, customer, basic.id)
    client.v1.subscriptions.update(
        sub.id,
        {"items": [{"id": sub["items"].data[0].id, "price": premium.id}], "proration_date": sub.created + 1},
    )
    manual = client.v1.invoices.create(
        {"customer": customer, "pending_invoice_items_behavior": "include", "auto_advance": False}
    )
    assert manual.total == sum(line.amount for line in manual.lines.data) != 0
    opened = client.v1.invoices.finalize_invoice(manual.id)
    assert opened.status == "open"
    assert opened.number
    assert opened.status_transitions.finalized_at
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.finalize_invoice(manual.id)
    uncollectible = client.v1.invoices.mark_uncollectible(manual.id)
    assert uncollectible.status == "uncollectible"
    voided = client.v1.invoices.void_invoice(manual.id)
    assert voided.status == "void"
    assert voided.status_transitions.voided_at
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.pay(manual.id)
    assert types(client, "invoice.")[-2:] == ["invoice.marked_uncollectible", "invoice.voided"]


def test_paid_invoice_cannot_be_paid_or_voided(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    sub = subscribe(client, customer, recurring_price(client, 100).id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.pay(sub.latest_invoice)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.void_invoice(sub.latest_invoice)


def test_numbers_are_sequential_per_customer(client: stripe.StripeClient, emulator: Emulator) -> None:
    customer, _ = customer_with_card(client)
    sub = subscribe(client, customer, recurring_price(client, 100).id)
    emulator.advance(32 * DAY)
    numbers = [i.number for i in reversed(client.v1.invoices.list({"subscription": sub.id}).data)]
    prefix = client.v1.customers.retrieve(customer).invoice_prefix
    assert numbers == [f"{prefix}-0001", f"{prefix}-0002"]


def test_hosted_page_and_pdf(client: stripe.StripeClient, emulator: Emulator) -> None:
    customer = client.v1.customers.create({"email": "<script>@example.com"})
    pm = attach_card(client, customer.id, "pm_card_visa")
    price = recurring_price(client, 4200, name="Pro <b>plan</b>")
    sub = subscribe(client, customer.id, price.id, default_payment_method=pm)
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    assert invoice.hosted_invoice_url.endswith(f"/invoices/{invoice.id}")
    page = emulator.handle("GET", f"/invoices/{invoice.id}")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    text = page.body.decode()
    assert invoice.number in text
    assert "$42.00" in text
    assert "paid" in text
    assert "<script>" not in text
    assert "&lt;script&gt;" in text
    assert "&lt;b&gt;" in text
    pdf = emulator.handle("GET", f"/invoices/{invoice.id}/pdf")
    assert pdf.status == 200
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.body.startswith(b"%PDF-1.4")
    assert pdf.body.rstrip().endswith(b"%%EOF")
    assert invoice.number.encode() in pdf.body
    assert emulator.handle("GET", "/invoices/in_missing").status == 404


def test_expand_payments_and_confirmation_secret(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    sub = subscribe(client, customer, recurring_price(client, 900).id)
    invoice = client.v1.invoices.retrieve(
        sub.latest_invoice, {"expand": ["payments.data.payment.payment_intent", "confirmation_secret"]}
    )
    pi = invoice.payments.data[0].payment.payment_intent
    assert pi.status == "succeeded"
    assert pi.amount == 900
    assert invoice.confirmation_secret.client_secret == pi.client_secret
    assert "payments" not in client.v1.invoices.retrieve(sub.latest_invoice)


def test_3ds_renewal_needs_action_then_succeeds_after_authentication(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    customer, _ = customer_with_card(client)
    sub = subscribe(client, customer, recurring_price(client, 1000).id)
    sca = attach_card(client, customer, "pm_card_authenticationRequired")
    client.v1.subscriptions.update(sub.id, {"default_payment_method": sca})
    emulator.advance(31 * DAY)
    renewed = client.v1.subscriptions.retrieve(sub.id)
    assert renewed.status == "past_due"
    invoice = client.v1.invoices.retrieve(renewed.latest_invoice, {"expand": ["payments"]})
    assert invoice.status == "open"
    # The customer comes back on-session and authenticates: the invoice's PaymentIntent succeeds.
    pi = invoice.payments.data[0].payment.payment_intent
    client.v1.payment_intents.confirm(pi, {"payment_method": sca})
    response = emulator.handle(
        "POST", f"/_emulator/payment_intents/{pi}/authenticate", headers={"Authorization": f"Bearer {KEY_A}"}
    )
    assert response.status == 200, response.body
    assert client.v1.invoices.retrieve(invoice.id).status == "paid"
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
