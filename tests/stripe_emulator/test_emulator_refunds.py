"""Refunds: full and partial, never more than the charge, with the charge kept in step and Stripe's events."""

from __future__ import annotations

import pytest
import stripe

from tests.stripe_emulator.payments_fixtures import as_dict, event_types, events_of, pay


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
