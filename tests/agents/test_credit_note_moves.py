"""An agent's credit note (issue #54, point 5, "credit note when it exists"): `credit_note_request` checks the
invoice as the REST API would and previews the credit note, issuing nothing; `move_confirm` issues it at Stripe
once however often it is confirmed, a lost answer included (the same Stripe key continues the first attempt);
what the request cannot be is refused with nothing stored and nothing at Stripe."""

import pytest

from agents.models import MoveConfirmation
from agents.tools import ToolError
from billing.models import CreditNote, Invoice
from core.models import AuditLogEntry
from stripe_gateway.client import install_http_client
from tests.billing.test_invoice_corrections import _open_invoice
from tests.billing.test_lost_answers import Wire

pytestmark = pytest.mark.django_db

ASKS = ["invoices_list", "credit_note_request"]
CONFIRMS = ["move_confirm"]


@pytest.fixture
def open_invoice(api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk) -> Invoice:
    """user-1's one-off invoice of 15.00 at Stripe, open (send_invoice) and mirrored."""
    return _open_invoice(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)


def _stripe_notes(stripe_sdk, invoice: Invoice) -> list[tuple[int, str]]:
    notes = stripe_sdk().v1.credit_notes.list({"invoice": invoice.stripe_invoice_id}).data
    return [(note.amount, note.status) for note in notes]


def test_a_credit_note_request_previews_and_issues_nothing(
    tenant_a, open_invoice, agent_key, call, stripe_sdk
):
    asker = agent_key(tenant_a.project, tools=ASKS)

    asked = call(asker, "credit_note_request", invoice=open_invoice.pk, amount=400, reason="one seat less")

    confirmation = MoveConfirmation.objects.get()
    assert (asked["confirmation_id"], asked["status"]) == (confirmation.pk, "pending")
    assert asked["preview"] == {
        "move": "credit_note",
        "invoice": open_invoice.pk,
        "customer": "user-1",
        "invoice_status": "open",
        "invoice_total": 1500,
        "amount_remaining": 1500,
        "amount": 400,
        "currency": "usd",
        "lowers_amount_due": 400,
        "refund_amount": 0,
        "credit_amount": 0,
        "out_of_band_amount": 0,
        "reason": "one seat less",
    }
    assert _stripe_notes(stripe_sdk, open_invoice) == []
    assert not CreditNote.objects.exists()
    assert stripe_sdk().v1.invoices.retrieve(open_invoice.stripe_invoice_id).amount_remaining == 1500


def test_a_confirmed_credit_note_is_issued_once_however_often_it_is_confirmed(
    tenant_a, open_invoice, agent_key, call, stripe_sdk
):
    asker = agent_key(tenant_a.project, tools=ASKS)
    confirmer = agent_key(tenant_a.project, tools=CONFIRMS, can_confirm=True, name="supervisor")
    asked = call(asker, "credit_note_request", invoice=open_invoice.pk, amount=400, reason="one seat less")

    made = call(confirmer, "move_confirm", confirmation_id=asked["confirmation_id"])
    again = call(confirmer, "move_confirm", confirmation_id=asked["confirmation_id"])

    assert again == made
    assert (made["tool"], made["status"]) == ("credit_note_request", "confirmed")
    note = CreditNote.objects.get()
    result = made["result"]
    assert (result["id"], result["invoice"], result["customer"]) == (note.pk, open_invoice.pk, "user-1")
    assert (result["status"], result["type"], result["amount"], result["pre_payment_amount"]) == (
        "issued",
        "pre_payment",
        400,
        400,
    )
    assert _stripe_notes(stripe_sdk, open_invoice) == [(400, "issued")]
    assert stripe_sdk().v1.invoices.retrieve(open_invoice.stripe_invoice_id).amount_remaining == 1100
    requested = AuditLogEntry.objects.get(action="credit_note.requested")
    assert (requested.actor_type, requested.actor_id, requested.reason) == (
        "agent_key",
        confirmer.pk,
        "one seat less",
    )
    assert requested.after["operation"] == f"agent-{asked['confirmation_id']}"


def test_a_confirmation_whose_answer_was_lost_issues_one_credit_note_under_the_same_stripe_key(
    tenant_a, open_invoice, agent_key, call, stripe_sdk, stripe_emulator, settings
):
    settings.STRIPE_MAX_NETWORK_RETRIES = 2
    wire = Wire(stripe_emulator)
    install_http_client(wire)  # the autouse emulator fixture uninstalls it after the test
    wire.lose(
        "POST", "/v1/credit_notes", times=3
    )  # the first attempt and the SDK's two retries: Stripe acted
    asker = agent_key(tenant_a.project, tools=ASKS)
    confirmer = agent_key(tenant_a.project, tools=CONFIRMS, can_confirm=True)
    asked = call(asker, "credit_note_request", invoice=open_invoice.pk, amount=500, reason="goodwill")

    with pytest.raises(ToolError) as lost:
        call(confirmer, "move_confirm", confirmation_id=asked["confirmation_id"])
    assert lost.value.status >= 500
    confirmation = MoveConfirmation.objects.get()
    assert (confirmation.status, confirmation.result) == ("confirmed", None)  # outcome unknown: not failed

    made = call(confirmer, "move_confirm", confirmation_id=asked["confirmation_id"])

    assert (made["result"]["amount"], made["result"]["status"]) == (500, "issued")
    assert _stripe_notes(stripe_sdk, open_invoice) == [(500, "issued")]
    keys = {key for method, path, key in wire.reached if (method, path) == ("POST", "/v1/credit_notes")}
    assert keys == {f"op:agent-{asked['confirmation_id']}:credit-note-create"}
    assert CreditNote.objects.count() == 1
    assert AuditLogEntry.objects.filter(action="credit_note.requested").count() == 1


@pytest.mark.parametrize(
    ("arguments", "status", "code"),
    [
        ({"amount": 1501}, 400, "invalid_amount"),  # more than the invoice's total
        ({"amount": 400, "credit_amount": 300, "out_of_band_amount": 101}, 400, "invalid_amount"),
    ],
)
def test_amounts_the_invoice_cannot_take_are_refused_and_nothing_is_stored(
    tenant_a, open_invoice, agent_key, call, stripe_sdk, arguments, status, code
):
    asker = agent_key(tenant_a.project, tools=ASKS)

    with pytest.raises(ToolError) as refused:
        call(asker, "credit_note_request", invoice=open_invoice.pk, reason="x", **arguments)

    assert (refused.value.status, refused.value.code, refused.value.param) == (status, code, "amount")
    assert not MoveConfirmation.objects.exists()
    assert _stripe_notes(stripe_sdk, open_invoice) == []


def test_a_void_invoice_is_not_credited_and_nothing_is_stored(
    tenant_a, open_invoice, agent_key, call, stripe_sdk, stripe_webhooks
):
    stripe_sdk().v1.invoices.void_invoice(open_invoice.stripe_invoice_id)
    stripe_webhooks.deliver()
    open_invoice.refresh_from_db()
    assert open_invoice.status == "void"
    asker = agent_key(tenant_a.project, tools=ASKS)

    with pytest.raises(ToolError) as refused:
        call(asker, "credit_note_request", invoice=open_invoice.pk, amount=100, reason="x")

    assert (refused.value.status, refused.value.code) == (409, "invoice_not_creditable")
    assert not MoveConfirmation.objects.exists()
    assert _stripe_notes(stripe_sdk, open_invoice) == []
