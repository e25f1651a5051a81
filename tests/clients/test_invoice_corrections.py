"""Correcting an invoice through the Python client, on the live server with the Stripe emulator: an open invoice
marked uncollectible, then voided (at Stripe too), a second mark refused with the typed conflict, and a void
retried with its idempotency key applied and audited once."""

import pytest
from tollgate_client import ConflictError, Tollgate
from tollgate_client.types import Invoice

from core.models import AuditLogEntry
from tests.billing.stripe_invoices import open_invoice_at_stripe
from tests.clients.test_journey import _define_catalog, _subscribe_and_pay

pytestmark = pytest.mark.django_db(transaction=True)


def _open_invoice(tollgate: Tollgate, stripe_emulator, stripe_webhooks, stripe_sdk) -> Invoice:
    """A one-off invoice of 1500 (send_invoice: it stays open until paid), made at Stripe for a subscriber."""
    _define_catalog(tollgate)
    _subscribe_and_pay(tollgate, stripe_emulator, stripe_webhooks)
    stripe_customer = tollgate.customers.retrieve("user-42").stripe_customer_id
    made = open_invoice_at_stripe(stripe_sdk(), stripe_customer, 1500)
    stripe_webhooks.deliver()
    (invoice,) = tollgate.invoices.list(customer="user-42", status="open").data
    assert (invoice.stripe_invoice_id, invoice.total, invoice.amount_remaining) == (made, 1500, 1500)
    return invoice


def test_an_open_invoice_marked_uncollectible_then_voided_once(
    tollgate, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _open_invoice(tollgate, stripe_emulator, stripe_webhooks, stripe_sdk)

    def at_stripe() -> str:
        return str(stripe_sdk().v1.invoices.retrieve(invoice.stripe_invoice_id).status)

    marked = tollgate.invoices.mark_uncollectible(invoice.id, reason="customer went away")

    assert isinstance(marked, Invoice)
    assert (marked.id, marked.status, marked.amount_remaining) == (invoice.id, "uncollectible", 1500)
    assert at_stripe() == "uncollectible"
    with pytest.raises(ConflictError) as caught:
        tollgate.invoices.mark_uncollectible(invoice.id)
    assert (caught.value.status, caught.value.type, caught.value.code) == (
        409,
        "conflict",
        "invoice_not_open",
    )
    assert at_stripe() == "uncollectible"

    voided = tollgate.invoices.void(invoice.id, reason="billed by mistake", idempotency_key="void-inv-1")
    again = tollgate.invoices.void(invoice.id, reason="billed by mistake", idempotency_key="void-inv-1")

    assert (voided.id, voided.status, voided.total) == (invoice.id, "void", 1500)
    assert again.raw == voided.raw  # the first answer, replayed
    assert at_stripe() == "void"
    assert tollgate.invoices.retrieve(invoice.id).status == "void"
    (audit,) = AuditLogEntry.objects.filter(action="invoice.void_requested")
    assert (audit.target_id, audit.actor_type, audit.reason) == (invoice.id, "api_key", "billed by mistake")
    assert (audit.before, audit.after) == ({"status": "uncollectible"}, {"status": "void"})
    (marked_audit,) = AuditLogEntry.objects.filter(action="invoice.mark_uncollectible_requested")
    assert (marked_audit.target_id, marked_audit.reason) == (invoice.id, "customer went away")
    # A new void (another key) is refused: a void invoice is final.
    with pytest.raises(ConflictError) as refused:
        tollgate.invoices.void(invoice.id)
    assert (refused.value.status, refused.value.code) == (409, "invoice_not_voidable")
    stripe_webhooks.deliver()
    assert tollgate.invoices.retrieve(invoice.id).status == "void"
    assert AuditLogEntry.objects.filter(action="invoice.void_requested").count() == 1
