"""Credit notes in the back office: finance issues one of an invoice (an amount in major units, given back where
the operator says) and voids one, each audited with the operator and the reason; support cannot."""

import re

from billing.models import CreditNote, Invoice
from core.models import AuditLogEntry
from tests.backoffice.test_roles_and_actions import _action, _login
from tests.billing.test_credit_notes import _paid_invoice, _stripe_notes

INVOICES = "/admin/billing/invoice/"
CREDIT_NOTES = "/admin/billing/creditnote/"


def test_finance_issues_a_partial_refund_credit_note_from_the_admin(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _paid_invoice(api, tenant_a, stripe_emulator, stripe_webhooks)
    sdk = stripe_sdk()
    client = _login("finance")
    form = client.post(INVOICES, {"action": "credit_note", "_selected_action": [invoice.pk]})
    assert form.status_code == 200
    page = form.content.decode()
    assert 'name="amount"' in page
    assert 'name="destination"' in page
    assert 'name="reason"' in page
    token = re.search(r'name="operation" value="([A-Za-z0-9]{24})"', page)
    assert token is not None
    # Not money, or a tenth of a cent: nothing is issued.
    not_money = _action(
        client, INVOICES, "credit_note", [invoice.pk], amount="five", destination="refund", reason="goodwill"
    )
    assert not_money.status_code == 200
    assert b"&#x27;five&#x27; is not an amount such as 25.00." in not_money.content
    too_precise = _action(
        client, INVOICES, "credit_note", [invoice.pk], amount="5.001", destination="refund", reason="goodwill"
    )
    assert "USD has 2 decimal places" in client.get(too_precise["Location"]).content.decode()
    assert _stripe_notes(sdk, invoice) == []

    fields = {
        "amount": "5.00",
        "destination": "refund",
        "credit_reason": "order_change",
        "memo": "one week unused",
        "reason": "customer asked",
        "operation": token.group(1),
    }
    done = _action(client, INVOICES, "credit_note", [invoice.pk], **fields)
    assert done.status_code == 302
    # The same page submitted again continues the same credit note: one at Stripe, audited once.
    again = _action(client, INVOICES, "credit_note", [invoice.pk], **fields)
    assert again.status_code == 302

    [stripe_note] = _stripe_notes(sdk, invoice)
    assert (stripe_note.amount, stripe_note.total, stripe_note.post_payment_amount) == (500, 500, 500)
    assert (stripe_note.reason, stripe_note.memo) == ("order_change", "one week unused")
    [refund] = sdk.v1.refunds.list({"payment_intent": invoice.stripe_payment_intent_id}).data
    assert (refund.amount, stripe_note.refunds[0].refund) == (500, refund.id)
    note = CreditNote.objects.get()
    assert (note.stripe_credit_note_id, note.refund_amount, note.credit_amount) == (stripe_note.id, 500, 0)
    assert f"credit note {note} of $5.00" in client.get(done["Location"]).content.decode()
    entry = AuditLogEntry.objects.get(action="credit_note.requested")
    assert (entry.actor_type, entry.actor_repr, entry.reason) == ("user", "finance-op", "customer asked")
    assert (entry.target_id, entry.after["refund_amount"]) == (invoice.pk, 500)

    # The credit note's list and page read as words and money.
    listing = client.get(CREDIT_NOTES).content.decode()
    assert "$5.00" in listing
    assert "After payment (given back)" in listing
    assert client.get(f"{CREDIT_NOTES}{note.pk}/change/").status_code == 200

    # A refunded credit note cannot be voided: Stripe's reason, nothing changed.
    refused = _action(client, CREDIT_NOTES, "void", [note.pk], reason="mistake")
    assert refused.status_code == 302
    assert "cannot be voided" in client.get(refused["Location"]).content.decode()
    assert CreditNote.objects.get().status == "issued"


def test_finance_voids_a_balance_credit_note_from_the_admin(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _paid_invoice(api, tenant_a, stripe_emulator, stripe_webhooks)
    client = _login("finance")
    done = _action(
        client, INVOICES, "credit_note", [invoice.pk], amount="3.00", destination="credit", reason="goodwill"
    )
    assert done.status_code == 302
    note = CreditNote.objects.get()
    assert (note.credit_amount, note.refund_amount) == (300, 0)

    voided = _action(client, CREDIT_NOTES, "void", [note.pk], reason="issued by mistake")
    assert voided.status_code == 302
    assert CreditNote.objects.get().status == "void"
    [stripe_note] = _stripe_notes(stripe_sdk(), invoice)
    assert stripe_note.status == "void"
    entry = AuditLogEntry.objects.get(action="credit_note.void_requested")
    assert (entry.actor_repr, entry.reason, entry.target_id) == ("finance-op", "issued by mistake", note.pk)


def test_support_cannot_issue_or_void_credit_notes(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _paid_invoice(api, tenant_a, stripe_emulator, stripe_webhooks)
    client = _login("support")
    page = client.get(INVOICES)
    assert page.status_code == 200
    assert b'value="credit_note"' not in page.content
    _action(client, INVOICES, "credit_note", [invoice.pk], amount="5.00", destination="refund", reason="try")
    assert _stripe_notes(stripe_sdk(), invoice) == []
    assert not CreditNote.objects.exists()
    assert not AuditLogEntry.objects.filter(action="credit_note.requested").exists()
    assert Invoice.objects.get(pk=invoice.pk).amount_paid == invoice.amount_paid
    listing = client.get(CREDIT_NOTES)
    assert listing.status_code == 200
    assert b'value="void"' not in listing.content
