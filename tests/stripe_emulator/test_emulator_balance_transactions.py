"""Balance transactions (``/v1/balance_transactions``) and the balance (``/v1/balance``) through the SDK: what
charges, refunds (pending, failed, by credit note) and disputes (lost, won) write, fees and nets, lists and
their filters, availability after two days on the customer's clock, and idempotent replays."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator
from stripe_emulator.payments.models.balance_transactions import AVAILABLE_AFTER, DISPUTE_FEE, processing_fee
from stripe_emulator.payments.models.refunds import REFUND_SETTLEMENT_DELAY
from tests.stripe_emulator.billing_fixtures import customer_with_card
from tests.stripe_emulator.payments_fixtures import as_dict, control, events_of, pay


def _txn(client: stripe.StripeClient, txn_id: Any) -> dict[str, Any]:
    return as_dict(client.v1.balance_transactions.retrieve(str(txn_id)))


def _balance(client: stripe.StripeClient) -> tuple[int, int]:
    """The usd (available, pending) amounts of ``GET /v1/balance``."""
    balance = client.v1.balance.retrieve()
    available = next(f.amount for f in balance.available if f.currency == "usd")
    pending = next(f.amount for f in balance.pending if f.currency == "usd")
    return available, pending


def _all(client: stripe.StripeClient) -> list[stripe.BalanceTransaction]:
    return client.v1.balance_transactions.list({"limit": 100}).data


def test_processing_fee_rounds_half_up() -> None:
    assert processing_fee(2000) == 88  # 58 + 30
    assert processing_fee(50) == 31  # 1.45 → 1
    assert processing_fee(1000) == 59  # 29 + 30
    assert processing_fee(1724) == 80  # 49.996 → 50
    assert processing_fee(1706) == 79  # 49.474 → 49


def test_a_succeeded_charge_writes_one_charge_transaction(client: stripe.StripeClient, clock: Any) -> None:
    pi = pay(client, description="Order 7")
    charge = client.v1.charges.retrieve(str(pi.latest_charge))
    txn = _txn(client, charge.balance_transaction)
    assert txn == {
        "id": charge.balance_transaction,
        "object": "balance_transaction",
        "amount": 2000,
        "available_on": charge.created + 2 * 86_400,
        "balance_type": "payments",
        "created": charge.created,
        "currency": "usd",
        "description": "Order 7",
        "exchange_rate": None,
        "fee": 88,
        "fee_details": [
            {
                "amount": 88,
                "application": None,
                "currency": "usd",
                "description": "Stripe processing fees",
                "type": "stripe_fee",
            }
        ],
        "net": 1912,
        "reporting_category": "charge",
        "source": charge.id,
        "status": "pending",
        "type": "charge",
    }
    assert charge.created == int(clock.now)
    # charge.succeeded already names it.
    assert events_of(client, "charge.succeeded")[0].data.object.balance_transaction == txn["id"]
    expanded = client.v1.charges.retrieve(charge.id, {"expand": ["balance_transaction"]})
    assert as_dict(expanded.balance_transaction) == txn
    listed = client.v1.balance_transactions.list({"expand": ["data.source"]}).data
    assert [t.id for t in listed] == [txn["id"]]
    assert listed[0].source.id == charge.id  # type: ignore[union-attr]
    one = client.v1.balance_transactions.retrieve(txn["id"], {"expand": ["source"]})
    assert one.source.object == "charge"  # type: ignore[union-attr]


def test_a_declined_charge_writes_none(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as declined:
        pay(client, "pm_card_chargeDeclined")
    assert declined.value.error is not None
    charge = client.v1.charges.retrieve(str(declined.value.error.charge))
    assert charge.balance_transaction is None
    assert _all(client) == []


def test_a_partial_refund_writes_a_negative_transaction_without_fee(client: stripe.StripeClient) -> None:
    pi = pay(client, description="Order 8")
    refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 500})
    txn = _txn(client, refund.balance_transaction)
    assert {k: txn[k] for k in ("amount", "fee", "fee_details", "net", "type", "reporting_category")} == {
        "amount": -500,
        "fee": 0,
        "fee_details": [],
        "net": -500,
        "type": "refund",
        "reporting_category": "refund",
    }
    assert (txn["source"], txn["description"], txn["currency"]) == (
        refund.id,
        "REFUND FOR CHARGE (Order 8)",
        "usd",
    )
    assert (txn["created"], txn["available_on"]) == (refund.created, refund.created + AVAILABLE_AFTER)
    assert events_of(client, "refund.created")[0].data.object.balance_transaction == txn["id"]
    expanded = client.v1.refunds.retrieve(refund.id, {"expand": ["balance_transaction"]})
    assert expanded.balance_transaction.net == -500  # type: ignore[union-attr]
    # The charge keeps its fee: the balance holds 1912 - 500.
    assert _balance(client) == (0, 1412)


def test_a_pending_refund_has_its_transaction_at_once(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_pendingRefund")
    refund = client.v1.refunds.create({"payment_intent": pi.id})
    assert refund.status == "pending"
    txn = _txn(client, refund.balance_transaction)
    assert (txn["amount"], txn["description"]) == (-2000, "REFUND FOR PAYMENT")
    assert _balance(client) == (0, 1912 - 2000)


def test_a_failed_refund_writes_a_refund_failure(client: stripe.StripeClient, emulator: Emulator) -> None:
    pi = pay(client, "pm_card_refundFail")
    refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 500})
    emulator.advance(REFUND_SETTLEMENT_DELAY)
    failed = client.v1.refunds.retrieve(refund.id)
    assert failed.status == "failed"
    assert failed.balance_transaction == refund.balance_transaction
    back = _txn(client, failed.failure_balance_transaction)
    assert {k: back[k] for k in ("amount", "fee", "net", "type", "reporting_category", "source")} == {
        "amount": 500,
        "fee": 0,
        "net": 500,
        "type": "refund_failure",
        "reporting_category": "refund_failure",
        "source": refund.id,
    }
    assert events_of(client, "refund.failed")[0].data.object.failure_balance_transaction == back["id"]
    assert [t.type for t in _all(client)] == ["refund_failure", "refund", "charge"]
    assert _balance(client) == (0, 1912)
    # Reads never write it again.
    client.v1.refunds.retrieve(refund.id)
    emulator.advance(REFUND_SETTLEMENT_DELAY)
    assert len(_all(client)) == 3


def test_a_lost_dispute_withdraws_the_amount_and_the_dispute_fee(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    pi = pay(client, "pm_card_createDispute")
    [dispute] = client.v1.disputes.list({"payment_intent": pi.id}).data
    [withdrawal] = [as_dict(t) for t in dispute.balance_transactions]
    assert {k: withdrawal[k] for k in ("amount", "fee", "net", "type", "reporting_category", "source")} == {
        "amount": -2000,
        "fee": DISPUTE_FEE,
        "net": -3500,
        "type": "adjustment",
        "reporting_category": "dispute",
        "source": dispute.id,
    }
    assert withdrawal["fee_details"] == [
        {
            "amount": 1500,
            "application": None,
            "currency": "usd",
            "description": "Dispute fee",
            "type": "stripe_fee",
        }
    ]
    assert withdrawal["description"] == f"Chargeback withdrawal for {pi.latest_charge}"
    assert withdrawal == _txn(client, withdrawal["id"])
    withdrawn = events_of(client, "charge.dispute.funds_withdrawn")[0].data.object
    assert [t.id for t in withdrawn.balance_transactions] == [withdrawal["id"]]
    lost = control(emulator, f"/_emulator/disputes/{dispute.id}/resolve", outcome="lost").data()
    assert [t["id"] for t in lost["balance_transactions"]] == [withdrawal["id"]]
    assert _balance(client) == (0, 1912 - 3500)


def test_a_won_dispute_reinstates_the_amount_but_not_the_dispute_fee(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    pi = pay(client, "pm_card_createDispute")
    [dispute] = client.v1.disputes.list({"payment_intent": pi.id}).data
    client.v1.disputes.update(dispute.id, {"evidence": {"uncategorized_text": "Delivered"}, "submit": True})
    control(emulator, f"/_emulator/disputes/{dispute.id}/resolve", outcome="won")
    won = client.v1.disputes.retrieve(dispute.id)
    assert won.status == "won"
    withdrawal, reinstatement = (as_dict(t) for t in won.balance_transactions)
    assert {
        k: reinstatement[k] for k in ("amount", "fee", "fee_details", "net", "type", "reporting_category")
    } == {
        "amount": 2000,
        "fee": 0,
        "fee_details": [],
        "net": 2000,
        "type": "adjustment",
        "reporting_category": "dispute_reversal",
    }
    assert reinstatement["source"] == withdrawal["source"] == dispute.id
    reinstated = events_of(client, "charge.dispute.funds_reinstated")[0].data.object
    assert [t.id for t in reinstated.balance_transactions] == [withdrawal["id"], reinstatement["id"]]
    # The merchant is out the dispute fee only.
    assert _balance(client) == (0, 1912 - DISPUTE_FEE)


def test_a_credit_note_refund_writes_its_transaction(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    price = client.v1.prices.create(
        {"currency": "usd", "unit_amount": 3000, "product_data": {"name": "Seat"}}
    )
    draft = client.v1.invoices.create(
        {"customer": customer, "collection_method": "charge_automatically", "auto_advance": False}
    )
    client.v1.invoice_items.create(
        {"customer": customer, "pricing": {"price": price.id}, "invoice": draft.id}
    )
    invoice = client.v1.invoices.pay(client.v1.invoices.finalize_invoice(draft.id).id)
    assert invoice.status == "paid"
    client.v1.credit_notes.create({"invoice": invoice.id, "amount": 700, "refund_amount": 700})
    [refund] = client.v1.refunds.list().data
    txn = _txn(client, refund.balance_transaction)
    assert (txn["amount"], txn["type"], txn["source"]) == (-700, "refund", refund.id)
    assert sorted(t.type for t in _all(client)) == ["charge", "refund"]


def test_lists_filter_and_page(client: stripe.StripeClient, emulator: Emulator) -> None:
    first = pay(client)
    emulator.advance(10)
    second = pay(client, amount=3000)
    euro = pay(client, currency="eur", amount=1000)
    refund = client.v1.refunds.create({"payment_intent": second.id, "amount": 100})
    everything = _all(client)
    assert [t.type for t in everything] == ["refund", "charge", "charge", "charge"]
    assert [t.source for t in everything[1:]] == [
        euro.latest_charge,
        second.latest_charge,
        first.latest_charge,
    ]

    def ids(**filters: Any) -> list[str]:
        params: Any = filters
        return [t.id for t in client.v1.balance_transactions.list(params).data]

    assert ids(type="refund") == [everything[0].id]
    assert ids(type="charge", currency="usd") == [everything[2].id, everything[3].id]
    assert ids(currency="eur") == [everything[1].id]
    assert ids(source=refund.id) == [everything[0].id]
    assert ids(created={"lt": everything[0].created}) == [everything[3].id]
    assert ids(created={"gte": everything[0].created}) == [t.id for t in everything[:3]]
    assert ids(payout="po_anything") == []  # no payouts are emulated
    page = client.v1.balance_transactions.list({"limit": 2})
    assert ([t.id for t in page.data], page.has_more) == ([t.id for t in everything[:2]], True)
    rest = client.v1.balance_transactions.list({"limit": 2, "starting_after": page.data[-1].id})
    assert ([t.id for t in rest.data], rest.has_more) == ([t.id for t in everything[2:]], False)
    back = client.v1.balance_transactions.list({"limit": 2, "ending_before": rest.data[0].id})
    assert [t.id for t in back.data] == [t.id for t in everything[:2]]
    # The eur fee follows the same schedule.
    assert (everything[1].fee, everything[1].net) == (59, 941)
    balance = client.v1.balance.retrieve()
    assert [(f.currency, f.amount) for f in balance.pending] == [("usd", 1912 + 2883 - 100), ("eur", 941)]


def test_retrieve_refuses_unknown_and_other_accounts_ids(
    client: stripe.StripeClient, other_client: stripe.StripeClient
) -> None:
    pi = pay(client)
    txn_id = str(client.v1.charges.retrieve(str(pi.latest_charge)).balance_transaction)
    for who, target in ((client, "txn_missing"), (other_client, txn_id)):
        with pytest.raises(stripe.InvalidRequestError) as err:
            who.v1.balance_transactions.retrieve(target)
        assert err.value.http_status == 404
        assert err.value.code == "resource_missing"
        assert str(err.value.user_message) == f"No such balance transaction: '{target}'"
    assert other_client.v1.balance_transactions.list().data == []


def test_balance_sums_nets_by_status_and_availability_after_two_days(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    empty = as_dict(client.v1.balance.retrieve())
    assert empty == {
        "object": "balance",
        "available": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
        "connect_reserved": [{"amount": 0, "currency": "usd"}],
        "livemode": False,
        "pending": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
    }
    pi = pay(client)
    emulator.advance(AVAILABLE_AFTER - 1)
    refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 300})
    assert _balance(client) == (0, 1612)
    emulator.advance(1)
    charge_txn = _txn(client, client.v1.charges.retrieve(str(pi.latest_charge)).balance_transaction)
    assert charge_txn["status"] == "available"
    assert _txn(client, refund.balance_transaction)["status"] == "pending"
    assert _balance(client) == (1912, -300)
    emulator.advance(AVAILABLE_AFTER)
    assert _balance(client) == (1612, 0)
    assert sum(t.net for t in _all(client)) == sum(_balance(client))


def test_the_sum_of_nets_is_the_balance(client: stripe.StripeClient, emulator: Emulator) -> None:
    pay(client)
    disputed = pay(client, "pm_card_createDispute", amount=1500)
    [dispute] = client.v1.disputes.list({"payment_intent": disputed.id}).data
    control(emulator, f"/_emulator/disputes/{dispute.id}/resolve", outcome="won")
    refund_fail = pay(client, "pm_card_refundFail", amount=900)
    client.v1.refunds.create({"payment_intent": refund_fail.id})
    emulator.advance(AVAILABLE_AFTER)
    partly = pay(client, amount=5000)
    client.v1.refunds.create({"payment_intent": partly.id, "amount": 1234})
    available, pending = _balance(client)
    assert available != 0
    assert pending != 0
    assert sum(t.net for t in _all(client)) == available + pending


def test_a_test_clock_customers_transactions_live_on_its_clock(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    frozen = 1_705_276_800
    test_clock = client.v1.test_helpers.test_clocks.create({"frozen_time": frozen})
    customer = client.v1.customers.create({"test_clock": test_clock.id})
    pi = pay(client, customer=customer.id)
    txn = _txn(client, client.v1.charges.retrieve(str(pi.latest_charge)).balance_transaction)
    assert (txn["created"], txn["available_on"], txn["status"]) == (
        frozen,
        frozen + AVAILABLE_AFTER,
        "pending",
    )
    # The emulator's clock does not move it; its own clock does.
    emulator.advance(AVAILABLE_AFTER * 3)
    assert _txn(client, txn["id"])["status"] == "pending"
    client.v1.test_helpers.test_clocks.advance(test_clock.id, {"frozen_time": frozen + AVAILABLE_AFTER - 1})
    assert _txn(client, txn["id"])["status"] == "pending"
    client.v1.test_helpers.test_clocks.advance(test_clock.id, {"frozen_time": frozen + AVAILABLE_AFTER})
    assert _txn(client, txn["id"])["status"] == "available"
    assert _balance(client) == (1912, 0)


def test_a_replayed_payment_writes_one_transaction(client: stripe.StripeClient) -> None:
    params: Any = {"amount": 2000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    first = client.v1.payment_intents.create(params, {"idempotency_key": "pay-once"})
    again = client.v1.payment_intents.create(params, {"idempotency_key": "pay-once"})
    assert again.id == first.id
    refund_params: Any = {"payment_intent": first.id, "amount": 100}
    client.v1.refunds.create(refund_params, {"idempotency_key": "refund-once"})
    client.v1.refunds.create(refund_params, {"idempotency_key": "refund-once"})
    assert sorted(t.type for t in _all(client)) == ["charge", "refund"]
    assert _balance(client) == (0, 1812)
