"""Credit notes (``/v1/credit_notes``: create, preview, preview lines, retrieve, update, list, lines, void)
and customer balance transactions (``/v1/customers/{id}/balance_transactions``) through the SDK: what a
credit note does to an open invoice (less to pay) and to a paid one (a real refund of its payment, customer
balance credit, out of band), the refusals, voiding, previews, events and idempotent replays."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator

from .billing_fixtures import customer_with_card, plain, recurring_price
from .payments_fixtures import event_types, events_of


def _price(client: stripe.StripeClient, amount: int, name: str = "Seat") -> stripe.Price:
    return client.v1.prices.create({"currency": "usd", "unit_amount": amount, "product_data": {"name": name}})


def _invoice(client: stripe.StripeClient, customer: str, *, paid: bool) -> stripe.Invoice:
    """A finalized invoice of two lines: 3 × 10.00 (``Seat``) and 5.00 (``Setup``), total 35.00; open (sent,
    not charged) or paid by the customer's default card."""
    method = "charge_automatically" if paid else "send_invoice"
    params: dict[str, Any] = {"customer": customer, "collection_method": method, "auto_advance": False}
    if not paid:
        params["days_until_due"] = 30
    draft = client.v1.invoices.create(params)
    price = _price(client, 1000)
    client.v1.invoice_items.create(
        {"customer": customer, "pricing": {"price": price.id}, "quantity": 3, "invoice": draft.id}
    )
    client.v1.invoice_items.create(
        {"customer": customer, "amount": 500, "description": "Setup", "invoice": draft.id}
    )
    invoice = client.v1.invoices.finalize_invoice(draft.id)
    if paid:
        invoice = client.v1.invoices.pay(invoice.id)
    assert invoice.total == 3500
    assert invoice.status == ("paid" if paid else "open")
    return invoice


def _seat_line(client: stripe.StripeClient, invoice: str) -> str:
    return next(line.id for line in client.v1.invoices.line_items.list(invoice).data if line.quantity == 3)


def _payment_intent(client: stripe.StripeClient, invoice: str) -> str:
    record = client.v1.invoice_payments.list({"invoice": invoice}).data[0]
    assert record.payment.payment_intent is not None
    return str(record.payment.payment_intent)


def _error(call: Any) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as info:
        call()
    return info.value


def _ledger(client: stripe.StripeClient, customer: str) -> list[tuple[str, int, int]]:
    """The customer's balance transactions, oldest first: (type, amount, ending_balance)."""
    txns = client.v1.customers.balance_transactions.list(customer, {"limit": 100}).data
    return [(t.type, t.amount, t.ending_balance) for t in reversed(txns)]


# -- open invoices ---------------------------------------------------------------------------------------


def test_a_partial_credit_note_on_an_open_invoice_lowers_what_is_due(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({"email": "a@example.com"}).id
    invoice = _invoice(client, customer, paid=False)
    seats = _seat_line(client, invoice.id)
    note = client.v1.credit_notes.create(
        {
            "invoice": invoice.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": seats, "quantity": 1}],
            "reason": "order_change",
            "memo": "One seat less",
            "metadata": {"ticket": "T-1"},
        }
    )
    assert note.id.startswith("cn_")
    assert (note.amount, note.subtotal, note.total, note.currency) == (1000, 1000, 1000, "usd")
    assert (note.pre_payment_amount, note.post_payment_amount, note.type) == (1000, 0, "pre_payment")
    assert (note.status, note.reason, note.memo, note.voided_at) == (
        "issued",
        "order_change",
        "One seat less",
        None,
    )
    assert (note.customer, note.invoice) == (customer, invoice.id)
    assert note.number == f"{invoice.number}-CN-01"
    assert note.refunds == []
    assert (note.customer_balance_transaction, note.out_of_band_amount) == (None, None)
    assert note.effective_at == note.created
    assert plain(note.metadata) == {"ticket": "T-1"}
    [line] = note.lines.data
    assert line.id.startswith("cnli_")
    assert (line.type, line.invoice_line_item, line.quantity, line.amount) == (
        "invoice_line_item",
        seats,
        1,
        1000,
    )
    assert (line.unit_amount, str(line.unit_amount_decimal)) == (1000, "1000")

    after = client.v1.invoices.retrieve(invoice.id)
    assert (after.status, after.total, after.amount_due, after.amount_remaining, after.amount_paid) == (
        "open",
        3500,
        2500,
        2500,
        0,
    )
    assert (after.pre_payment_credit_notes_amount, after.post_payment_credit_notes_amount) == (1000, 0)
    [created] = events_of(client, "credit_note.created")
    assert created.data.object["id"] == note.id
    # The draft's own changes (its lines added) came first; the credit note's change is the last.
    updated = [e for e in events_of(client, "invoice.updated") if e.data.object["status"] != "draft"]
    assert len(updated) == 1
    assert plain(updated[0].data.previous_attributes) == {
        "amount_due": 3500,
        "amount_remaining": 3500,
        "pre_payment_credit_notes_amount": 0,
    }
    assert updated[0].data.object["amount_due"] == 2500

    # A custom line, and the next number.
    second = client.v1.credit_notes.create(
        {
            "invoice": invoice.id,
            "lines": [
                {"type": "custom_line_item", "description": "Goodwill", "quantity": 2, "unit_amount": 150}
            ],
        }
    )
    assert second.number == f"{invoice.number}-CN-02"
    [custom] = second.lines.data
    assert (custom.type, custom.description, custom.quantity, custom.unit_amount, custom.amount) == (
        "custom_line_item",
        "Goodwill",
        2,
        150,
        300,
    )
    assert custom.invoice_line_item is None
    assert client.v1.invoices.retrieve(invoice.id).amount_due == 2200


def test_crediting_an_open_invoice_down_to_zero_pays_it(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({"email": "a@example.com"}).id
    invoice = _invoice(client, customer, paid=False)
    note = client.v1.credit_notes.create({"invoice": invoice.id, "amount": 3500})
    assert note.lines.data == []
    assert (note.total, note.pre_payment_amount, note.post_payment_amount) == (3500, 3500, 0)
    paid = client.v1.invoices.retrieve(invoice.id)
    assert (paid.status, paid.amount_due, paid.amount_paid, paid.amount_remaining) == ("paid", 0, 0, 0)
    assert paid.pre_payment_credit_notes_amount == 3500
    assert event_types(client).count("invoice.paid") == 1
    # Nothing is left to credit.
    refused = _error(lambda: client.v1.credit_notes.create({"invoice": invoice.id, "amount": 1}))
    assert (refused.http_status, refused.param) == (400, "amount")


def test_an_open_invoice_credited_beyond_what_is_due_gives_out_the_rest(client: stripe.StripeClient) -> None:
    """The customer's credit balance paid part of the invoice: a full credit note reduces what is due to zero
    (pre-payment) and must give out the rest (post-payment), here as balance credit: a ``mixed`` note."""
    customer = client.v1.customers.create({"email": "a@example.com", "balance": -500}).id
    invoice = _invoice(client, customer, paid=False)
    assert (invoice.starting_balance, invoice.ending_balance, invoice.amount_due) == (-500, 0, 3000)
    refused = _error(lambda: client.v1.credit_notes.create({"invoice": invoice.id, "amount": 3500}))
    assert refused.http_status == 400
    assert "post_payment_amount" in refused.user_message
    note = client.v1.credit_notes.create({"invoice": invoice.id, "amount": 3500, "credit_amount": 500})
    assert (note.pre_payment_amount, note.post_payment_amount, note.type) == (3000, 500, "mixed")
    assert client.v1.customers.retrieve(customer).balance == -500
    assert client.v1.invoices.retrieve(invoice.id).status == "paid"
    assert _ledger(client, customer) == [
        ("initial", -500, -500),
        ("applied_to_invoice", 500, 0),
        ("credit_note", -500, -500),
    ]


# -- paid invoices ---------------------------------------------------------------------------------------


def test_refund_amount_refunds_the_invoice_payment_through_a_real_refund(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    invoice = _invoice(client, customer, paid=True)
    pi = _payment_intent(client, invoice.id)
    before = len(event_types(client))
    note = client.v1.credit_notes.create(
        {
            "invoice": invoice.id,
            "lines": [
                {
                    "type": "invoice_line_item",
                    "invoice_line_item": _seat_line(client, invoice.id),
                    "amount": 700,
                }
            ],
            "refund_amount": 700,
            "reason": "duplicate",
        }
    )
    assert (note.total, note.pre_payment_amount, note.post_payment_amount, note.type) == (
        700,
        0,
        700,
        "post_payment",
    )
    assert (note.lines.data[0].quantity, note.lines.data[0].amount) == (None, 700)
    [refund] = client.v1.refunds.list({"payment_intent": pi}).data
    assert (refund.amount, refund.status, refund.reason) == (700, "succeeded", "duplicate")
    assert [(r.refund, r.amount_refunded, r.type) for r in note.refunds] == [(refund.id, 700, "refund")]
    charge = client.v1.charges.retrieve(str(refund.charge))
    assert (charge.amount_refunded, charge.refunded) == (700, False)
    after = client.v1.invoices.retrieve(invoice.id)
    assert (after.status, after.amount_paid, after.amount_remaining) == ("paid", 3500, 0)
    assert (after.pre_payment_credit_notes_amount, after.post_payment_credit_notes_amount) == (0, 700)
    assert client.v1.customers.retrieve(customer).balance == 0
    types = event_types(client)[before:]
    for once in ("refund.created", "charge.refunded", "credit_note.created", "invoice.updated"):
        assert types.count(once) == 1, once
    assert "customer.updated" not in types
    expanded = client.v1.credit_notes.retrieve(note.id, {"expand": ["refunds.refund"]})
    assert expanded.refunds[0].refund.amount == 700  # type: ignore[union-attr]


def test_credit_amount_credits_the_customer_balance_with_one_transaction(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    invoice = _invoice(client, customer, paid=True)
    note = client.v1.credit_notes.create({"invoice": invoice.id, "amount": 1200, "credit_amount": 1200})
    assert client.v1.customers.retrieve(customer).balance == -1200
    [txn] = client.v1.customers.balance_transactions.list(customer).data
    assert (txn.type, txn.amount, txn.ending_balance, txn.currency) == ("credit_note", -1200, -1200, "usd")
    assert (txn.credit_note, note.customer_balance_transaction) == (note.id, txn.id)
    assert client.v1.refunds.list({"payment_intent": _payment_intent(client, invoice.id)}).data == []
    [changed] = events_of(client, "customer.updated")[-1:]
    assert plain(changed.data.previous_attributes) == {"balance": 0}

    # The credit pays the next invoice first.
    draft = client.v1.invoices.create({"customer": customer, "auto_advance": False})
    client.v1.invoice_items.create({"customer": customer, "amount": 1000, "invoice": draft.id})
    next_invoice = client.v1.invoices.finalize_invoice(draft.id)
    assert (next_invoice.starting_balance, next_invoice.ending_balance, next_invoice.amount_due) == (
        -1200,
        -200,
        0,
    )
    assert next_invoice.status == "paid"
    assert _ledger(client, customer) == [("credit_note", -1200, -1200), ("applied_to_invoice", 1000, -200)]
    applied = client.v1.customers.balance_transactions.list(customer, {"invoice": next_invoice.id}).data
    assert [t.type for t in applied] == ["applied_to_invoice"]


def test_out_of_band_amount_and_a_split_distribution(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    invoice = _invoice(client, customer, paid=True)
    note = client.v1.credit_notes.create(
        {
            "invoice": invoice.id,
            "amount": 1000,
            "refund_amount": 300,
            "credit_amount": 200,
            "out_of_band_amount": 500,
        }
    )
    assert note.out_of_band_amount == 500
    assert [r.amount_refunded for r in note.refunds] == [300]
    assert client.v1.customers.retrieve(customer).balance == -200
    assert client.v1.invoices.retrieve(invoice.id).post_payment_credit_notes_amount == 1000


def test_a_refund_made_outside_can_be_linked_and_counts_against_what_can_be_credited(
    client: stripe.StripeClient,
) -> None:
    customer, _ = customer_with_card(client)
    invoice = _invoice(client, customer, paid=True)
    refund = client.v1.refunds.create({"payment_intent": _payment_intent(client, invoice.id), "amount": 500})
    # 35.00 less the 5.00 refunded outside any credit note.
    refused = _error(
        lambda: client.v1.credit_notes.create({"invoice": invoice.id, "amount": 3100, "credit_amount": 3100})
    )
    assert (refused.http_status, refused.param) == (400, "amount")
    note = client.v1.credit_notes.create(
        {"invoice": invoice.id, "amount": 800, "refunds": [{"refund": refund.id}], "credit_amount": 300}
    )
    assert [(r.refund, r.amount_refunded) for r in note.refunds] == [(refund.id, 500)]
    assert len(client.v1.refunds.list().data) == 1  # linked, not refunded again
    # Linked, the refund is inside a credit note: 35.00 − 8.00 is left.
    client.v1.credit_notes.create({"invoice": invoice.id, "amount": 2700, "credit_amount": 2700})
    gone = _error(
        lambda: client.v1.credit_notes.create({"invoice": invoice.id, "amount": 1, "credit_amount": 1})
    )
    assert gone.http_status == 400
    again = _error(
        lambda: client.v1.credit_notes.create(
            {"invoice": invoice.id, "amount": 100, "refunds": [{"refund": refund.id}]}
        )
    )
    assert again.param == "refunds[0][amount_refunded]"


def test_discounts_and_the_invoice_total_are_credited_in_proportion(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    coupon = client.v1.coupons.create({"percent_off": 10, "duration": "forever"})
    price = recurring_price(client, 1000)
    sub = client.v1.subscriptions.create(
        {
            "customer": customer,
            "items": [{"price": price.id, "quantity": 3}],
            "discounts": [{"coupon": coupon.id}],
        }
    )
    invoice = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert (invoice.status, invoice.total) == ("paid", 2700)
    line = invoice.lines.data[0].id
    first = client.v1.credit_notes.create(
        {
            "invoice": invoice.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": line, "quantity": 1}],
            "credit_amount": 900,
        }
    )
    assert (first.subtotal, first.discount_amount, first.total) == (1000, 100, 900)
    assert [d.amount for d in first.discount_amounts] == [100]
    assert [d.amount for d in first.pretax_credit_amounts] == [100]
    assert first.lines.data[0].discount_amounts[0].amount == 100
    # By quantity once, by quantity always (as Stripe refuses mixing both ways on one line).
    mixed = _error(
        lambda: client.v1.credit_notes.create(
            {
                "invoice": invoice.id,
                "lines": [{"type": "invoice_line_item", "invoice_line_item": line, "amount": 100}],
                "credit_amount": 90,
            }
        )
    )
    assert mixed.param == "lines[0][amount]"
    too_many = _error(
        lambda: client.v1.credit_notes.create(
            {
                "invoice": invoice.id,
                "lines": [{"type": "invoice_line_item", "invoice_line_item": line, "quantity": 3}],
                "credit_amount": 2700,
            }
        )
    )
    assert too_many.param == "lines[0][quantity]"
    rest = client.v1.credit_notes.create(
        {
            "invoice": invoice.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": line}],  # what is left: 2 seats
            "credit_amount": 1800,
        }
    )
    assert (rest.lines.data[0].quantity, rest.total) == (2, 1800)
    assert client.v1.customers.retrieve(customer).balance == -2700


def test_automatic_tax_is_credited_with_its_line(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    client.v1.customers.update(customer, {"address": {"country": "DE", "postal_code": "10115"}})
    price = client.v1.prices.create(
        {
            "currency": "eur",
            "unit_amount": 1000,
            "tax_behavior": "exclusive",
            "recurring": {"interval": "month"},
            "product_data": {"name": "Pro"},
        }
    )
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": price.id}], "automatic_tax": {"enabled": True}}
    )
    invoice = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert (invoice.status, invoice.total) == ("paid", 1190)
    line = invoice.lines.data[0].id
    note = client.v1.credit_notes.create(
        {
            "invoice": invoice.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": line, "amount": 500}],
            "refund_amount": 595,
        }
    )
    assert (note.subtotal, note.total, note.total_excluding_tax, note.currency) == (500, 595, 500, "eur")
    assert note.lines.data[0].taxes is not None
    assert [(t.amount, t.taxable_amount) for t in note.lines.data[0].taxes] == [(95, 500)]
    assert note.total_taxes is not None
    assert [t.amount for t in note.total_taxes] == [95]
    custom = _error(
        lambda: client.v1.credit_notes.create(
            {
                "invoice": invoice.id,
                "lines": [{"type": "custom_line_item", "unit_amount": 100}],
                "credit_amount": 100,
            }
        )
    )
    assert custom.param == "lines[0][type]"
    # The rest of the line takes the rest of its tax, to the cent.
    rest = client.v1.credit_notes.create(
        {
            "invoice": invoice.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": line}],
            "credit_amount": 595,
        }
    )
    assert (rest.subtotal, rest.total) == (500, 595)


# -- refusals --------------------------------------------------------------------------------------------


def test_a_distribution_that_does_not_add_up_is_refused_and_nothing_happens(
    client: stripe.StripeClient,
) -> None:
    customer, _ = customer_with_card(client)
    invoice = _invoice(client, customer, paid=True)
    before = event_types(client)
    for params in (
        {"amount": 1000, "refund_amount": 500},
        {"amount": 1000},
        {"amount": 1000, "refund_amount": 600, "credit_amount": 600},
    ):
        sent: Any = {"invoice": invoice.id, **params}
        refused = _error(lambda sent=sent: client.v1.credit_notes.create(sent))
        assert refused.http_status == 400
        assert "post_payment_amount" in refused.user_message
    open_invoice = _invoice(client, client.v1.customers.create({"email": "b@example.com"}).id, paid=False)
    refused = _error(
        lambda: client.v1.credit_notes.create(
            {"invoice": open_invoice.id, "amount": 100, "credit_amount": 100}
        )
    )
    assert refused.http_status == 400
    assert client.v1.credit_notes.list().data == []
    assert client.v1.refunds.list().data == []
    assert client.v1.customers.retrieve(customer).balance == 0
    assert [t for t in event_types(client)[len(before) :] if t.startswith(("credit_note", "refund"))] == []


def test_over_crediting_is_refused(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({"email": "a@example.com"}).id
    invoice = _invoice(client, customer, paid=False)
    seats = _seat_line(client, invoice.id)
    client.v1.credit_notes.create({"invoice": invoice.id, "amount": 3000})
    over = _error(lambda: client.v1.credit_notes.create({"invoice": invoice.id, "amount": 600}))
    assert (over.http_status, over.param) == (400, "amount")
    assert "$5.00" in over.user_message
    quantity = _error(
        lambda: client.v1.credit_notes.create(
            {
                "invoice": invoice.id,
                "lines": [{"type": "invoice_line_item", "invoice_line_item": seats, "quantity": 4}],
            }
        )
    )
    assert (quantity.http_status, quantity.param) == (400, "lines[0][quantity]")
    assert len(client.v1.credit_notes.list({"invoice": invoice.id}).data) == 1
    assert client.v1.invoices.retrieve(invoice.id).amount_due == 500


def test_refused_invoices_and_params(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({"email": "a@example.com"}).id
    draft = client.v1.invoices.create({"customer": customer, "auto_advance": False})
    client.v1.invoice_items.create({"customer": customer, "amount": 1000, "invoice": draft.id})
    assert (
        _error(lambda: client.v1.credit_notes.create({"invoice": draft.id, "amount": 100})).param == "invoice"
    )
    voided = _invoice(client, customer, paid=False)
    client.v1.invoices.void_invoice(voided.id)
    assert (
        _error(lambda: client.v1.credit_notes.create({"invoice": voided.id, "amount": 100})).http_status
        == 400
    )
    bad = _invoice(client, customer, paid=False)
    client.v1.invoices.mark_uncollectible(bad.id)
    assert (
        _error(lambda: client.v1.credit_notes.create({"invoice": bad.id, "amount": 100})).http_status == 400
    )
    missing = _error(lambda: client.v1.credit_notes.create({"invoice": "in_missing", "amount": 100}))
    assert (missing.http_status, missing.code, missing.param) == (404, "resource_missing", "invoice")
    invoice = _invoice(client, customer, paid=False)
    neither = _error(lambda: client.v1.credit_notes.create({"invoice": invoice.id}))
    assert neither.http_status == 400
    reason = _error(
        lambda: client.v1.credit_notes.create({"invoice": invoice.id, "amount": 100, "reason": "nope"})
    )
    assert reason.param == "reason"
    unknown_line = _error(
        lambda: client.v1.credit_notes.create(
            {
                "invoice": invoice.id,
                "lines": [{"type": "invoice_line_item", "invoice_line_item": "il_x", "quantity": 1}],
            }
        )
    )
    assert unknown_line.param == "lines[0][invoice_line_item]"
    custom = _error(
        lambda: client.v1.credit_notes.create(
            {
                "invoice": invoice.id,
                "lines": [{"type": "custom_line_item", "unit_amount": 100, "amount": 100}],
            }
        )
    )
    assert custom.param == "lines[0][amount]"
    assert client.v1.credit_notes.list().data == []


def test_refund_amount_needs_a_payment_to_refund(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({"email": "a@example.com", "balance": -5000}).id
    draft = client.v1.invoices.create({"customer": customer, "auto_advance": False})
    client.v1.invoice_items.create({"customer": customer, "amount": 1000, "invoice": draft.id})
    invoice = client.v1.invoices.finalize_invoice(draft.id)
    assert invoice.status == "paid"  # by the customer's credit balance: no payment
    refused = _error(
        lambda: client.v1.credit_notes.create({"invoice": invoice.id, "amount": 1000, "refund_amount": 1000})
    )
    assert refused.param == "refund_amount"
    note = client.v1.credit_notes.create({"invoice": invoice.id, "amount": 1000, "credit_amount": 1000})
    assert note.type == "post_payment"
    assert client.v1.customers.retrieve(customer).balance == -5000


# -- void ------------------------------------------------------------------------------------------------


def test_void_gives_back_what_the_credit_note_credited(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({"email": "a@example.com"}).id
    invoice = _invoice(client, customer, paid=False)
    note = client.v1.credit_notes.create({"invoice": invoice.id, "amount": 1000})
    voided = client.v1.credit_notes.void_credit_note(note.id)
    assert voided.status == "void"
    assert voided.voided_at is not None
    after = client.v1.invoices.retrieve(invoice.id)
    assert (after.amount_due, after.amount_remaining, after.pre_payment_credit_notes_amount) == (
        3500,
        3500,
        0,
    )
    assert len(events_of(client, "credit_note.voided")) == 1
    assert _error(lambda: client.v1.credit_notes.void_credit_note(note.id)).http_status == 400
    # The voided note no longer counts: the whole invoice can be credited again, numbered after it.
    again = client.v1.credit_notes.create({"invoice": invoice.id, "amount": 3500})
    assert again.number == f"{invoice.number}-CN-02"
    # A pre-payment credit note of an invoice that is no longer open stays.
    assert client.v1.invoices.retrieve(invoice.id).status == "paid"
    assert _error(lambda: client.v1.credit_notes.void_credit_note(again.id)).http_status == 400

    paying, _ = customer_with_card(client, email="b@example.com")
    paid = _invoice(client, paying, paid=True)
    credit = client.v1.credit_notes.create({"invoice": paid.id, "amount": 1200, "credit_amount": 1200})
    client.v1.credit_notes.void_credit_note(credit.id)
    assert client.v1.customers.retrieve(paying).balance == 0
    assert _ledger(client, paying) == [("credit_note", -1200, -1200), ("credit_note", 1200, 0)]
    assert client.v1.invoices.retrieve(paid.id).post_payment_credit_notes_amount == 0
    refunded = client.v1.credit_notes.create({"invoice": paid.id, "amount": 500, "refund_amount": 500})
    assert _error(lambda: client.v1.credit_notes.void_credit_note(refunded.id)).http_status == 400
    assert client.v1.credit_notes.retrieve(refunded.id).status == "issued"


# -- preview ---------------------------------------------------------------------------------------------


def test_preview_and_preview_lines_create_nothing(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    invoice = _invoice(client, customer, paid=True)
    lines: list[Any] = [
        {"type": "invoice_line_item", "invoice_line_item": _seat_line(client, invoice.id), "quantity": 2},
        {"type": "custom_line_item", "description": "Goodwill", "unit_amount": 100},
    ]
    params: Any = {"invoice": invoice.id, "lines": lines, "refund_amount": 1000, "credit_amount": 1100}
    before = event_types(client)
    preview = client.v1.credit_notes.preview(params)
    assert (preview.total, preview.post_payment_amount, preview.status) == (2100, 2100, "issued")
    assert [line.amount for line in preview.lines.data] == [2000, 100]
    assert preview.number == f"{invoice.number}-CN-01"
    first = client.v1.credit_notes.preview_lines.list({**params, "limit": 1})
    assert first.has_more
    assert [line.amount for line in first.data] == [2000]
    second = client.v1.credit_notes.preview_lines.list(
        {**params, "limit": 1, "starting_after": first.data[0].id}
    )
    assert not second.has_more
    assert [line.amount for line in second.data] == [100]
    assert client.v1.credit_notes.list().data == []
    assert client.v1.refunds.list().data == []
    assert client.v1.customers.retrieve(customer).balance == 0
    assert client.v1.customers.balance_transactions.list(customer).data == []
    assert event_types(client) == before
    refused = _error(lambda: client.v1.credit_notes.preview({"invoice": invoice.id, "amount": 100}))
    assert refused.http_status == 400
    created = client.v1.credit_notes.create(params)
    assert (created.total, [line.amount for line in created.lines.data]) == (2100, [2000, 100])


# -- reads, update ---------------------------------------------------------------------------------------


def test_retrieve_update_list_and_lines(client: stripe.StripeClient, emulator: Emulator) -> None:
    customer = client.v1.customers.create({"email": "a@example.com"}).id
    invoice = _invoice(client, customer, paid=False)
    other = _invoice(client, client.v1.customers.create({"email": "b@example.com"}).id, paid=False)
    lines: Any = [
        {
            "type": "custom_line_item",
            "description": f"Credit {n}",
            "unit_amount": 100,
            "metadata": {"n": str(n)},
        }
        for n in range(3)
    ]
    note = client.v1.credit_notes.create({"invoice": invoice.id, "lines": lines})
    other_note = client.v1.credit_notes.create({"invoice": other.id, "amount": 100})
    assert plain(client.v1.credit_notes.retrieve(note.id)) == plain(note)
    updated = client.v1.credit_notes.update(note.id, {"memo": "Thanks", "metadata": {"a": "1"}})
    assert (updated.memo, plain(updated.metadata)) == ("Thanks", {"a": "1"})
    [event] = events_of(client, "credit_note.updated")
    assert plain(event.data.previous_attributes) == {"memo": None, "metadata": {"a": None}}
    bad = _error(lambda: client.v1.credit_notes.update(note.id, {"amount": 5}))  # type: ignore[typeddict-unknown-key]
    assert bad.param == "amount"

    assert [n.id for n in client.v1.credit_notes.list().data] == [other_note.id, note.id]
    assert [n.id for n in client.v1.credit_notes.list({"invoice": invoice.id}).data] == [note.id]
    assert [n.id for n in client.v1.credit_notes.list({"customer": customer}).data] == [note.id]

    page = client.v1.credit_notes.line_items.list(note.id, {"limit": 2})
    assert page.has_more
    assert [line.description for line in page.data] == ["Credit 0", "Credit 1"]
    rest = client.v1.credit_notes.line_items.list(note.id, {"starting_after": page.data[1].id})
    assert [line.description for line in rest.data] == ["Credit 2"]
    assert plain(rest.data[0].metadata) == {"n": "2"}
    missing = _error(lambda: client.v1.credit_notes.retrieve("cn_missing"))
    assert (missing.http_status, missing.code) == (404, "resource_missing")

    pdf = emulator.handle("GET", note.pdf.removeprefix(emulator.base_url))
    assert (pdf.status, pdf.headers["Content-Type"]) == (200, "application/pdf")
    assert pdf.body.startswith(b"%PDF-")


def test_an_idempotent_replay_returns_the_same_credit_note(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    invoice = _invoice(client, customer, paid=True)
    params: Any = {"invoice": invoice.id, "amount": 900, "refund_amount": 400, "credit_amount": 500}
    first = client.v1.credit_notes.create(params, {"idempotency_key": "cn-1"})
    second = client.v1.credit_notes.create(params, {"idempotency_key": "cn-1"})
    assert second.id == first.id
    assert second.last_response is not None
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(client.v1.credit_notes.list().data) == 1
    assert len(client.v1.refunds.list().data) == 1
    assert client.v1.customers.retrieve(customer).balance == -500
    types = event_types(client)
    assert (types.count("credit_note.created"), types.count("refund.created")) == (1, 1)
    debit: Any = {"amount": 100, "currency": "usd"}
    txn = client.v1.customers.balance_transactions.create(customer, debit, {"idempotency_key": "b-1"})
    assert (
        client.v1.customers.balance_transactions.create(customer, debit, {"idempotency_key": "b-1"}).id
        == txn.id
    )
    assert client.v1.customers.retrieve(customer).balance == -400


# -- customer balance transactions -----------------------------------------------------------------------


def test_customer_balance_transactions(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({"email": "a@example.com"}).id
    txn = client.v1.customers.balance_transactions.create(
        customer, {"amount": -500, "currency": "usd", "description": "Loyalty", "metadata": {"k": "v"}}
    )
    assert txn.id.startswith("cbtxn_")
    assert (txn.type, txn.amount, txn.ending_balance, txn.description, txn.customer) == (
        "adjustment",
        -500,
        -500,
        "Loyalty",
        customer,
    )
    assert (txn.invoice, txn.credit_note, txn.checkout_session) == (None, None, None)
    assert client.v1.customers.retrieve(customer).balance == -500
    assert plain(events_of(client, "customer.updated")[-1].data.previous_attributes) == {
        "balance": 0,
        "currency": None,
    }
    assert client.v1.customers.retrieve(customer).currency == "usd"
    assert plain(client.v1.customers.balance_transactions.retrieve(customer, txn.id)) == plain(txn)
    updated = client.v1.customers.balance_transactions.update(
        customer, txn.id, {"description": "Loyalty bonus", "metadata": {"k": "", "x": "y"}}
    )
    assert (updated.description, plain(updated.metadata), updated.amount) == (
        "Loyalty bonus",
        {"x": "y"},
        -500,
    )
    debit = client.v1.customers.balance_transactions.create(customer, {"amount": 200, "currency": "usd"})
    assert (debit.ending_balance, client.v1.customers.retrieve(customer).balance) == (-300, -300)
    # Setting the balance directly is an adjustment too: the ledger always adds up to the balance.
    client.v1.customers.update(customer, {"balance": 1000})
    ledger = _ledger(client, customer)
    assert ledger == [("adjustment", -500, -500), ("adjustment", 200, -300), ("adjustment", 1300, 1000)]
    assert sum(amount for _, amount, _ in ledger) == client.v1.customers.retrieve(customer).balance
    page = client.v1.customers.balance_transactions.list(customer, {"limit": 1})
    assert page.has_more
    assert len(page.data) == 1

    other = client.v1.customers.create({"email": "b@example.com", "balance": 250}).id
    assert _ledger(client, other) == [("initial", 250, 250)]
    foreign = _error(lambda: client.v1.customers.balance_transactions.retrieve(other, txn.id))
    assert (foreign.http_status, foreign.code) == (404, "resource_missing")
    assert (
        _error(lambda: client.v1.customers.balance_transactions.create(customer, {"amount": 1})).param
        == "currency"
    )  # type: ignore[typeddict-item]
    other_currency = _error(
        lambda: client.v1.customers.balance_transactions.create(customer, {"amount": 1, "currency": "eur"})
    )
    assert other_currency.param == "currency"
    immutable = _error(
        lambda: client.v1.customers.balance_transactions.update(customer, txn.id, {"amount": 5})
    )  # type: ignore[typeddict-unknown-key]
    assert immutable.param == "amount"
    nobody = _error(lambda: client.v1.customers.balance_transactions.list("cus_missing"))
    assert nobody.http_status == 404


def test_a_voided_invoice_gives_back_the_balance_it_took(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({"email": "a@example.com", "balance": -300}).id
    invoice = _invoice(client, customer, paid=False)
    assert (invoice.amount_due, client.v1.customers.retrieve(customer).balance) == (3200, 0)
    client.v1.invoices.void_invoice(invoice.id)
    assert client.v1.customers.retrieve(customer).balance == -300
    assert _ledger(client, customer) == [
        ("initial", -300, -300),
        ("applied_to_invoice", 300, 0),
        ("unapplied_from_invoice", -300, -300),
    ]
    by_invoice = client.v1.customers.balance_transactions.list(customer, {"invoice": invoice.id}).data
    assert [t.type for t in by_invoice] == ["unapplied_from_invoice", "applied_to_invoice"]
