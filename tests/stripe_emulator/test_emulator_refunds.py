"""Refunds: full and partial, never more than the charge, with the charge kept in step and Stripe's events."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator
from stripe_emulator.payments.models.refunds import REFUND_SETTLEMENT_DELAY
from tests.stripe_emulator.conftest import FakeClock, Receiver, add_endpoint
from tests.stripe_emulator.payments_fixtures import as_dict, control, event_types, events_of, pay


def test_full_refund_by_payment_intent(client: stripe.StripeClient) -> None:
    pi = pay(client, metadata={"order": "7"})
    refund = client.v1.refunds.create({"payment_intent": pi.id, "reason": "requested_by_customer"})
    assert (refund.amount, refund.status, refund.reason) == (2000, "succeeded", "requested_by_customer")
    assert (refund.charge, refund.payment_intent) == (pi.latest_charge, pi.id)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (2000, True)
    assert [r.id for r in charge.refunds.data] == [refund.id]
    assert event_types(client)[-2:] == ["refund.created", "charge.refunded"]
    assert as_dict(events_of(client, "charge.refunded")[0].data.object) == as_dict(charge)
    # The PaymentIntent keeps what it received.
    assert client.v1.payment_intents.retrieve(pi.id).amount_received == 2000


def test_partial_refunds_never_exceed_the_charge(client: stripe.StripeClient) -> None:
    pi = pay(client)
    first = client.v1.refunds.create({"charge": pi.latest_charge, "amount": 500})
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (500, False)

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create({"payment_intent": pi.id, "amount": 1501})
    assert too_much.value.error.param == "amount"
    assert "greater than unrefunded amount" in str(too_much.value.user_message)

    rest = client.v1.refunds.create({"payment_intent": pi.id})
    assert rest.amount == 1500
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create({"charge": pi.latest_charge, "amount": 1})
    assert again.value.code == "charge_already_refunded"

    charge = client.v1.charges.retrieve(pi.latest_charge)
    refunds = client.v1.refunds.list({"charge": charge.id}).data
    assert [r.id for r in refunds] == [rest.id, first.id]
    assert sum(r.amount for r in refunds) == charge.amount_refunded == charge.amount
    assert charge.refunded is True


def test_refund_metadata_update_emits_refund_events(client: stripe.StripeClient) -> None:
    pi = pay(client)
    refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 300, "metadata": {"a": "1"}})
    updated = client.v1.refunds.update(refund.id, {"metadata": {"b": "2"}})
    assert as_dict(updated.metadata) == {"a": "1", "b": "2"}
    assert event_types(client)[-2:] == ["refund.updated", "charge.refund.updated"]
    assert as_dict(client.v1.refunds.retrieve(refund.id)) == as_dict(updated)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert as_dict(charge.refunds.data[0].metadata) == {"a": "1", "b": "2"}


def test_refund_refusals(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create({})
    open_pi = client.v1.payment_intents.create({"amount": 1000, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError) as not_paid:
        client.v1.refunds.create({"payment_intent": open_pi.id})
    assert not_paid.value.code == "charge_not_refundable"
    try:
        pay(client, "pm_card_chargeDeclined")
    except stripe.CardError as declined:
        failed_charge = declined.error.charge
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create({"charge": failed_charge})
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.refunds.create({"charge": "ch_missing"})
    assert missing.value.http_status == 404
    other = pay(client)
    mine = pay(client)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create({"charge": other.latest_charge, "payment_intent": mine.id})
    assert client.v1.refunds.list().data == []


def test_refund_list_filters(client: stripe.StripeClient) -> None:
    a, b = pay(client), pay(client)
    ra = client.v1.refunds.create({"payment_intent": a.id, "amount": 100})
    rb = client.v1.refunds.create({"payment_intent": b.id, "amount": 100})
    assert [r.id for r in client.v1.refunds.list({"payment_intent": a.id}).data] == [ra.id]
    assert [r.id for r in client.v1.refunds.list().data] == [rb.id, ra.id]
    page = client.v1.refunds.list({"limit": 1})
    assert page.has_more is True
    assert [r.id for r in client.v1.refunds.list({"limit": 1, "starting_after": rb.id}).data] == [ra.id]


# -- asynchronous outcomes (https://docs.stripe.com/testing#refunds) ---------------------------------------


def _refund_events(client: stripe.StripeClient, since: int) -> list[stripe.Event]:
    """The account's events after the first ``since`` of them, oldest first."""
    return list(reversed(client.v1.events.list({"limit": 100}).data))[since:]


def test_refund_fail_card_succeeds_then_fails_after_the_delay(
    client: stripe.StripeClient, emulator: Emulator, receiver: Receiver
) -> None:
    add_endpoint(client, ["refund.created", "refund.failed", "charge.refund.updated", "charge.refunded"])
    pi = pay(client, "pm_card_refundFail")
    refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 500})
    assert (refund.status, refund.amount) == ("succeeded", 500)
    assert "failure_reason" not in refund
    assert "failure_balance_transaction" not in refund
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (500, False)
    before = len(event_types(client))

    emulator.advance(REFUND_SETTLEMENT_DELAY - 1)
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
    assert _refund_events(client, before) == []

    emulator.advance(1)
    failed = client.v1.refunds.retrieve(refund.id)
    assert (failed.status, failed.failure_reason) == ("failed", "expired_or_canceled_card")
    assert failed.failure_balance_transaction.startswith("txn_")
    events = _refund_events(client, before)
    assert [e.type for e in events] == ["refund.failed", "charge.refund.updated"]
    assert all(e.request.id is None for e in events)
    assert "previous_attributes" not in as_dict(events[0].data)
    assert as_dict(events[1].data.previous_attributes) == {
        "status": "succeeded",
        "failure_reason": None,
        "failure_balance_transaction": None,
    }
    assert as_dict(events[0].data.object) == as_dict(failed) == as_dict(events[1].data.object)

    # The money is back with the merchant: the charge no longer counts it, and it can be refunded again.
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    assert [(r.id, r.status) for r in charge.refunds.data] == [(refund.id, "failed")]
    again = client.v1.refunds.create({"payment_intent": pi.id})
    assert again.amount == 2000

    emulator.flush_webhooks()
    assert receiver.types() == [
        "refund.created",
        "charge.refunded",
        "refund.failed",
        "charge.refund.updated",
        "refund.created",
        "charge.refunded",
    ]


def test_full_refund_that_fails_reopens_the_charge(client: stripe.StripeClient, emulator: Emulator) -> None:
    pi = pay(client, "pm_card_refundFail")
    refund = client.v1.refunds.create({"charge": pi.latest_charge})
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (refund.status, charge.amount_refunded, charge.refunded) == ("succeeded", 2000, True)
    emulator.advance(REFUND_SETTLEMENT_DELAY)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    assert charge.refunds.data[0].status == "failed"


def test_pending_refund_card_counts_at_once_and_succeeds_later(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    pi = pay(client, "pm_card_pendingRefund")
    refund = client.v1.refunds.create({"payment_intent": pi.id})
    assert (refund.status, refund.pending_reason, refund.amount) == ("pending", "processing", 2000)
    assert event_types(client)[-2:] == ["refund.created", "charge.refunded"]
    assert events_of(client, "refund.created")[0].data.object.status == "pending"
    # A pending refund already counts: the charge is fully refunded and cannot be refunded twice.
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (2000, True)
    with pytest.raises(stripe.InvalidRequestError) as twice:
        client.v1.refunds.create({"payment_intent": pi.id, "amount": 1})
    assert twice.value.code == "charge_already_refunded"
    before = len(event_types(client))

    # Time moving without ``advance`` (time-machine, wall time) is seen on the next read.
    clock.now += REFUND_SETTLEMENT_DELAY
    settled = client.v1.refunds.retrieve(refund.id)
    assert settled.status == "succeeded"
    assert "pending_reason" not in settled
    events = _refund_events(client, before)
    assert [e.type for e in events] == ["refund.updated", "charge.refund.updated"]
    for event in events:
        assert as_dict(event.data.previous_attributes) == {
            "status": "pending",
            "pending_reason": "processing",
        }
        assert event.request.id is None
        assert as_dict(event.data.object) == as_dict(settled)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (2000, True)
    assert charge.refunds.data[0].status == "succeeded"
    # Settled once: later time changes nothing more.
    clock.now += 10 * REFUND_SETTLEMENT_DELAY
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
    assert len(event_types(client)) == before + 2


def test_other_cards_refund_at_once_and_never_change(client: stripe.StripeClient, emulator: Emulator) -> None:
    pi = pay(client)
    refund = client.v1.refunds.create({"payment_intent": pi.id})
    before = len(event_types(client))
    emulator.advance(30 * 86400)
    assert as_dict(client.v1.refunds.retrieve(refund.id)) == as_dict(refund)
    assert len(event_types(client)) == before


def test_settle_control(client: stripe.StripeClient, emulator: Emulator) -> None:
    pending_pi = pay(client, "pm_card_pendingRefund")
    pending = client.v1.refunds.create({"payment_intent": pending_pi.id, "amount": 700})
    before = len(event_types(client))
    body = control(
        emulator,
        f"/_emulator/refunds/{pending.id}/settle",
        outcome="fail",
        failure_reason="lost_or_stolen_card",
    ).data()
    assert (body["status"], body["failure_reason"]) == ("failed", "lost_or_stolen_card")
    assert body["failure_balance_transaction"].startswith("txn_")
    assert "pending_reason" not in body
    events = _refund_events(client, before)
    assert [e.type for e in events] == ["refund.failed", "charge.refund.updated"]
    assert as_dict(events[1].data.previous_attributes) == {
        "status": "pending",
        "pending_reason": "processing",
        "failure_reason": None,
        "failure_balance_transaction": None,
    }
    assert client.v1.charges.retrieve(pending_pi.latest_charge).amount_refunded == 0
    # The scheduled outcome is gone with it.
    emulator.advance(REFUND_SETTLEMENT_DELAY)
    assert len(event_types(client)) == before + 2

    # Succeed a pending refund before its time.
    other = client.v1.refunds.create({"payment_intent": pending_pi.id, "amount": 300})
    body = control(emulator, f"/_emulator/refunds/{other.id}/settle", outcome="succeed").data()
    assert body["status"] == "succeeded"
    assert event_types(client)[-2:] == ["refund.updated", "charge.refund.updated"]

    # Any succeeded card refund can be failed (live-mode refunds can fail after appearing to succeed).
    visa = pay(client)
    plain = client.v1.refunds.create({"payment_intent": visa.id})
    body = control(emulator, f"/_emulator/refunds/{plain.id}/settle", outcome="fail").data()
    assert (body["status"], body["failure_reason"]) == ("failed", "expired_or_canceled_card")
    assert client.v1.charges.retrieve(visa.latest_charge).refunded is False

    refused = [
        control(emulator, f"/_emulator/refunds/{plain.id}/settle", outcome="fail"),
        control(emulator, f"/_emulator/refunds/{other.id}/settle", outcome="succeed"),
        control(
            emulator, f"/_emulator/refunds/{other.id}/settle", outcome="succeed", failure_reason="unknown"
        ),
        control(emulator, f"/_emulator/refunds/{other.id}/settle", outcome="fail", failure_reason="nope"),
        control(emulator, f"/_emulator/refunds/{other.id}/settle"),
    ]
    assert [r.status for r in refused] == [400, 400, 400, 400, 400]
    assert refused[0].data()["error"]["message"] == (
        f"Refund {plain.id} has a status of failed; only a pending or succeeded refund can fail."
    )
    assert refused[2].data()["error"]["param"] == "failure_reason"
    assert control(emulator, "/_emulator/refunds/re_missing/settle", outcome="fail").status == 404


def test_checkout_card_number_drives_the_refund(client: stripe.StripeClient, emulator: Emulator) -> None:
    product = client.v1.products.create({"name": "Ticket"})
    price = client.v1.prices.create({"product": product.id, "unit_amount": 1500, "currency": "usd"})
    session = client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://shop.example/done",
        }
    )
    page = emulator.handle("GET", f"/checkout/pay/{session.id}")
    assert b"4000 0000 0000 5126" in page.body
    assert b"4000 0000 0000 7726" in page.body
    completed = control(
        emulator, f"/_emulator/checkout/sessions/{session.id}/complete", card="4000 0000 0000 5126"
    )
    assert completed.status == 200
    refund = client.v1.refunds.create({"payment_intent": completed.data()["payment_intent"]})
    assert refund.status == "succeeded"
    emulator.advance(REFUND_SETTLEMENT_DELAY)
    assert client.v1.refunds.retrieve(refund.id).status == "failed"


def test_tokens_and_test_clock_customers(client: stripe.StripeClient, emulator: Emulator) -> None:
    pm = client.v1.payment_methods.create({"type": "card", "card": {"token": "tok_refundFail"}})
    assert pm.card.last4 == "5126"
    test_clock = client.v1.test_helpers.test_clocks.create({"frozen_time": 1_705_276_800})
    customer = client.v1.customers.create({"test_clock": test_clock.id})
    pi = pay(client, "pm_card_refundFail", customer=customer.id)
    refund = client.v1.refunds.create({"payment_intent": pi.id})
    assert refund.created == 1_705_276_800
    # The emulator's own clock leaves a test-clock customer's refund alone; its clock's advance settles it.
    emulator.advance(REFUND_SETTLEMENT_DELAY)
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
    client.v1.test_helpers.test_clocks.advance(
        test_clock.id, {"frozen_time": 1_705_276_800 + REFUND_SETTLEMENT_DELAY}
    )
    assert client.v1.refunds.retrieve(refund.id).status == "failed"
    assert client.v1.charges.retrieve(pi.latest_charge).amount_refunded == 0


def test_cancel_and_expire_are_refused_for_card_refunds(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_pendingRefund")
    refund = client.v1.refunds.create({"payment_intent": pi.id})
    with pytest.raises(stripe.InvalidRequestError) as cancel:
        client.v1.refunds.cancel(refund.id)
    assert cancel.value.http_status == 400
    assert str(cancel.value.user_message) == (
        f"Refund {refund.id} has a status of pending. Only a refund with a status of requires_action can be "
        "canceled."
    )
    with pytest.raises(stripe.InvalidRequestError) as expire:
        client.v1.test_helpers.refunds.expire(refund.id)
    assert "can be expired" in str(expire.value.user_message)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.refunds.cancel("re_missing")
    assert missing.value.http_status == 404
    assert client.v1.refunds.retrieve(refund.id).status == "pending"


def test_only_metadata_is_updatable(client: stripe.StripeClient, emulator: Emulator) -> None:
    pi = pay(client, "pm_card_refundFail")
    refund = client.v1.refunds.create({"payment_intent": pi.id, "metadata": {"order": "7"}})
    for params in ({"amount": 100}, {"reason": "duplicate"}, {"status": "failed"}):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.refunds.update(refund.id, params)  # type: ignore[arg-type]
        assert refused.value.error.param == next(iter(params))
    emulator.advance(REFUND_SETTLEMENT_DELAY)
    updated = client.v1.refunds.update(refund.id, {"metadata": {"order": "", "ticket": "T-1"}})
    assert (updated.status, as_dict(updated.metadata)) == ("failed", {"ticket": "T-1"})
    assert as_dict(events_of(client, "refund.updated")[-1].data.previous_attributes) == {
        "metadata": {"order": "7", "ticket": None}
    }


def test_refund_list_filters_and_paging(client: stripe.StripeClient, clock: FakeClock) -> None:
    a, b = pay(client), pay(client, "pm_card_refundFail")
    start = int(clock.now)
    r1 = client.v1.refunds.create({"payment_intent": a.id, "amount": 100})
    clock.now += 10
    r2 = client.v1.refunds.create({"payment_intent": b.id, "amount": 100})
    clock.now += 10
    r3 = client.v1.refunds.create({"payment_intent": a.id, "amount": 100})

    def ids_of(**params: Any) -> list[str]:
        return [r.id for r in client.v1.refunds.list(params).data]  # type: ignore[arg-type]

    assert ids_of() == [r3.id, r2.id, r1.id]
    assert ids_of(charge=a.latest_charge) == [r3.id, r1.id]
    assert ids_of(payment_intent=b.id) == [r2.id]
    assert ids_of(created={"gte": start + 10}) == [r3.id, r2.id]
    assert ids_of(created={"lt": start + 10}) == [r1.id]
    assert ids_of(created=start + 20) == [r3.id]
    assert ids_of(payment_intent=a.id, created={"gt": start}) == [r3.id]
    first = client.v1.refunds.list({"limit": 2})
    assert ([r.id for r in first.data], first.has_more, first.url) == ([r3.id, r2.id], True, "/v1/refunds")
    rest = client.v1.refunds.list({"limit": 2, "starting_after": r2.id})
    assert ([r.id for r in rest.data], rest.has_more) == ([r1.id], False)
    back = client.v1.refunds.list({"limit": 1, "ending_before": r1.id})
    assert ([r.id for r in back.data], back.has_more) == ([r2.id], True)
    assert ids_of(charge=a.latest_charge, starting_after=r3.id) == [r1.id]
    on_charge = client.raw_request("get", f"/v1/charges/{a.latest_charge}/refunds", limit=1)
    listed = client.deserialize(on_charge, api_mode="V1")
    assert ([r.id for r in listed.data], listed.has_more) == ([r3.id], True)
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.refunds.list({"status": "failed"})  # type: ignore[arg-type]
    assert unknown.value.error.param == "status"
