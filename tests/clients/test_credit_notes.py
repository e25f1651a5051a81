"""Credit notes through the Python client, on the live server with the Stripe emulator: an open invoice credited
(what it owes lowered) then the credit note voided; a paid invoice's partial refund issued once under its
idempotency key, listed and retrieved; too much refused with Stripe's reason, a refunded note not voidable."""

import pytest
from tollgate_client import ConflictError, InvalidRequestError
from tollgate_client.types import CreditNote

from core.models import AuditLogEntry
from tests.clients.test_invoice_corrections import _open_invoice

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_open_invoice_credited_then_the_credit_note_voided(
    tollgate, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _open_invoice(tollgate, stripe_emulator, stripe_webhooks, stripe_sdk)

    note = tollgate.credit_notes.create(invoice.id, amount=500, reason="order_change", memo="one seat less")

    assert isinstance(note, CreditNote)
    assert (note.object, note.invoice, note.customer, note.status, note.type) == (
        "credit_note",
        invoice.id,
        "user-42",
        "issued",
        "pre_payment",
    )
    assert (note.amount, note.pre_payment_amount, note.post_payment_amount) == (500, 500, 0)
    assert (note.reason, note.memo) == ("order_change", "one seat less")
    at_stripe = stripe_sdk().v1.credit_notes.retrieve(note.stripe_credit_note_id)
    assert (at_stripe.amount, at_stripe.status) == (500, "issued")
    stripe_webhooks.deliver()
    assert tollgate.invoices.retrieve(invoice.id).amount_remaining == 1000

    voided = tollgate.credit_notes.void(note.id, reason="credited by mistake")

    assert (voided.id, voided.status) == (note.id, "void")
    assert stripe_sdk().v1.credit_notes.retrieve(note.stripe_credit_note_id).status == "void"
    with pytest.raises(ConflictError) as refused:
        tollgate.credit_notes.void(note.id)
    assert (refused.value.status, refused.value.code) == (409, "credit_note_not_voidable")
    (audit,) = AuditLogEntry.objects.filter(action="credit_note.void_requested")
    assert (audit.target_id, audit.actor_type, audit.reason) == (note.id, "api_key", "credited by mistake")


def test_a_paid_invoice_refunded_in_part_once(tollgate, stripe_emulator, stripe_webhooks, stripe_sdk):
    open_invoice = _open_invoice(tollgate, stripe_emulator, stripe_webhooks, stripe_sdk)
    (paid,) = tollgate.invoices.list(customer="user-42", status="paid").data

    with pytest.raises(InvalidRequestError) as too_much:
        tollgate.credit_notes.create(paid.id, amount=paid.total + 1, refund_amount=paid.total + 1)
    assert too_much.value.status == 400
    assert stripe_sdk().v1.credit_notes.list({"invoice": paid.stripe_invoice_id}).data == []

    note = tollgate.credit_notes.create(paid.id, amount=300, refund_amount=300, idempotency_key="cn-paid-1")
    again = tollgate.credit_notes.create(paid.id, amount=300, refund_amount=300, idempotency_key="cn-paid-1")

    assert again.raw == note.raw  # the first answer, replayed
    assert (note.type, note.refund_amount, note.credit_amount, note.post_payment_amount) == (
        "post_payment",
        300,
        0,
        300,
    )
    (at_stripe,) = stripe_sdk().v1.credit_notes.list({"invoice": paid.stripe_invoice_id}).data
    assert (at_stripe.id, at_stripe.amount) == (note.stripe_credit_note_id, 300)
    assert tollgate.credit_notes.retrieve(note.id).raw == note.raw
    assert [n.id for n in tollgate.credit_notes.list(invoice=paid.id).data] == [note.id]
    assert [n.id for n in tollgate.credit_notes.list(customer="user-42").data] == [note.id]
    assert tollgate.credit_notes.list(invoice=open_invoice.id).data == []
    # Audited before it is sent: the refused request is on record too, the retried one once.
    requested = AuditLogEntry.objects.filter(action="credit_note.requested").order_by("created_at")
    assert [entry.after["amount"] for entry in requested] == [paid.total + 1, 300]
    # A refund cannot be taken back.
    with pytest.raises(ConflictError) as refused:
        tollgate.credit_notes.void(note.id)
    assert refused.value.code == "credit_note_not_voidable"
