"""Disputes: the dispute test card opens one; evidence, submission, acceptance and the issuer's decision."""

from __future__ import annotations

import pytest
import stripe

from stripe_emulator import Emulator
from tests.stripe_emulator.payments_fixtures import as_dict, control, event_types, events_of, pay


def _disputed(client: stripe.StripeClient) -> tuple[stripe.PaymentIntent, stripe.Dispute]:
    pi = pay(client, "pm_card_createDispute")
    assert pi.status == "succeeded"
    disputes = client.v1.disputes.list({"payment_intent": pi.id}).data
    assert len(disputes) == 1
    return pi, disputes[0]


def test_dispute_card_opens_a_dispute(client: stripe.StripeClient) -> None:
    pi, dispute = _disputed(client)
    assert (dispute.status, dispute.reason, dispute.amount) == ("needs_response", "fraudulent", 2000)
    assert as_dict(dispute.evidence_details)["submission_method"] == "not_submitted"
    assert (dispute.intended_submission_method, dispute.network_reason_code) == (None, "10.4")
    assert dispute.charge == pi.latest_charge
    assert client.v1.charges.retrieve(pi.latest_charge).disputed is True
    types = event_types(client)
    assert types.index("payment_intent.succeeded") < types.index("charge.dispute.created")
    created = events_of(client, "charge.dispute.created")[0]
    assert created.data.object.id == dispute.id
    assert [d.id for d in client.v1.disputes.list({"charge": pi.latest_charge}).data] == [dispute.id]
    # A charged-back payment cannot be refunded as well.
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.refunds.create({"payment_intent": pi.id})
    assert err.value.code == "charge_disputed"


def test_evidence_submission_then_lost(emulator: Emulator, client: stripe.StripeClient) -> None:
    _, dispute = _disputed(client)
    saved = client.v1.disputes.update(
        dispute.id,
        {"evidence": {"customer_name": "Jo", "uncategorized_text": "Delivered"}, "metadata": {"k": "v"}},
    )
    assert saved.status == "needs_response"
    assert saved.evidence.customer_name == "Jo"
    assert (saved.evidence_details.has_evidence, saved.evidence_details.submission_method) == (
        True,
        "not_submitted",
    )
    submitted = client.v1.disputes.update(dispute.id, {"submit": True})
    assert submitted.status == "under_review"
    assert (submitted.evidence_details.submission_count, submitted.evidence_details.submission_method) == (
        1,
        "manual",
    )
    assert as_dict(events_of(client, "charge.dispute.updated")[-1].data.object) == as_dict(
        client.v1.disputes.retrieve(dispute.id)
    )

    answer = control(emulator, f"/_emulator/disputes/{dispute.id}/resolve", outcome="lost")
    assert answer.status == 200
    assert answer.data()["status"] == "lost"
    closed = events_of(client, "charge.dispute.closed")
    assert [e.data.object.status for e in closed] == ["lost"]
    again = control(emulator, f"/_emulator/disputes/{dispute.id}/resolve", outcome="won")
    assert again.status == 400


def test_won_dispute_reinstates_funds(emulator: Emulator, client: stripe.StripeClient) -> None:
    _, dispute = _disputed(client)
    control(emulator, f"/_emulator/disputes/{dispute.id}/resolve", outcome="won")
    assert client.v1.disputes.retrieve(dispute.id).status == "won"
    assert event_types(client)[-2:] == ["charge.dispute.closed", "charge.dispute.funds_reinstated"]


def test_close_accepts_the_loss(client: stripe.StripeClient) -> None:
    _, dispute = _disputed(client)
    closed = client.v1.disputes.close(dispute.id)
    assert closed.status == "lost"
    assert event_types(client)[-1] == "charge.dispute.closed"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.close(dispute.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.update(dispute.id, {"submit": True})
    # Metadata may still change on a closed dispute.
    assert as_dict(client.v1.disputes.update(dispute.id, {"metadata": {"n": "1"}}).metadata) == {"n": "1"}


def test_resolve_control_needs_a_known_dispute(emulator: Emulator) -> None:
    assert control(emulator, "/_emulator/disputes/dp_missing/resolve", outcome="won").status == 404
    assert control(emulator, "/_emulator/disputes/dp_missing/resolve", outcome="maybe").status == 400
