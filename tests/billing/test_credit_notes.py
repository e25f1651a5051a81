"""Credit notes of invoices, issued and voided at Stripe through the API: refunded to the card, credited to the
customer's balance or lowering what an open invoice still owes; one credit note at Stripe under any retry (lost
answers included), mirrored once from Stripe's answer and events, announced once, audited; Stripe refusing the
amounts is the caller's 400, and another tenant's invoice is not found, with nothing done at Stripe."""

from billing.models import CreditNote, Invoice, Payment
from core.models import AuditLogEntry
from customers.models import Customer
from events.models import Event
from tests.billing.test_invoice_corrections import _open_invoice
from tests.billing.test_lost_answers import wire  # noqa: F401 (a fixture)
from tests.e2e.test_subscription_lifecycle import _subscribe

CREATE_PATH = "/v1/credit_notes"


def _paid_invoice(api, tenant, stripe_emulator, stripe_webhooks) -> Invoice:
    _subscribe(api, tenant, stripe_emulator, stripe_webhooks)
    invoice = Invoice.objects.get(project=tenant.project)
    assert invoice.status == "paid"
    return invoice


def _credit(api, tenant, invoice: Invoice, body: dict, key: str | None = None):
    headers = {"Idempotency-Key": key} if key else {}
    return api.post(f"/api/v1/invoices/{invoice.pk}/credit_notes", body, key=tenant.key, headers=headers)


def _stripe_notes(sdk, invoice: Invoice) -> list:
    return list(sdk.v1.credit_notes.list({"invoice": invoice.stripe_invoice_id}).data)


def _events(kind: str) -> list[Event]:
    return list(Event.objects.filter(type=kind))


def test_a_partial_credit_note_of_a_paid_invoice_is_refunded_to_the_card_once(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _paid_invoice(api, tenant_a, stripe_emulator, stripe_webhooks)
    sdk = stripe_sdk()

    response = _credit(
        api,
        tenant_a,
        invoice,
        {"amount": 500, "refund_amount": 500, "reason": "order_change", "memo": "one week unused"},
        key="cn-1",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["object"], body["invoice"], body["customer"], body["status"], body["type"]) == (
        "credit_note",
        invoice.pk,
        "user-1",
        "issued",
        "post_payment",
    )
    assert (body["amount"], body["pre_payment_amount"], body["post_payment_amount"]) == (500, 0, 500)
    assert (body["refund_amount"], body["credit_amount"], body["out_of_band_amount"]) == (500, 0, 0)
    assert (body["reason"], body["memo"], body["lines"]) == ("order_change", "one week unused", [])
    [stripe_note] = _stripe_notes(sdk, invoice)
    assert stripe_note.id == body["stripe_credit_note_id"]
    [refund] = sdk.v1.refunds.list({"payment_intent": invoice.stripe_payment_intent_id}).data
    assert (refund.amount, stripe_note.refunds[0].refund) == (500, refund.id)

    stripe_webhooks.deliver()

    payment = Payment.objects.get(project=tenant_a.project, stripe_invoice_id=invoice.stripe_invoice_id)
    assert payment.amount_refunded == 500
    note = CreditNote.objects.get()
    assert (note.pk, note.status, note.number) == (body["id"], "issued", stripe_note.number)
    assert (note.amount, note.total, note.refund_amount, note.post_payment_amount) == (500, 500, 500, 500)
    [created] = _events("credit_note.created")
    assert (created.data["object"]["id"], created.data["object"]["refund_amount"]) == (note.pk, 500)
    audit = AuditLogEntry.objects.get(action="credit_note.requested")
    assert (audit.target_id, audit.actor_type, audit.reason) == (invoice.pk, "api_key", "one week unused")
    assert audit.before == {"status": "paid", "amount_remaining": 0}
    # Listed and retrieved as mirrored.
    listed = api.get(f"/api/v1/credit_notes?invoice={invoice.pk}", key=tenant_a.key).json()
    assert [n["id"] for n in listed["data"]] == [note.pk]
    assert api.get(f"/api/v1/credit_notes/{note.pk}", key=tenant_a.key).json()["refund_amount"] == 500
    # A credit note that refunded money cannot be voided.
    refused = api.post(f"/api/v1/credit_notes/{note.pk}/void", {}, key=tenant_a.key)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "credit_note_not_voidable")
    assert sdk.v1.credit_notes.retrieve(note.stripe_credit_note_id).status == "issued"


def test_a_credit_to_the_customer_balance_then_voided_gives_it_back(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _paid_invoice(api, tenant_a, stripe_emulator, stripe_webhooks)
    sdk = stripe_sdk()
    stripe_customer = Customer.objects.get(project=tenant_a.project).stripe_customer_id

    response = _credit(
        api, tenant_a, invoice, {"lines": [{"invoice_line": 0, "amount": 700}], "credit_amount": 700}
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amount"], body["credit_amount"], body["refund_amount"]) == (700, 700, 0)
    assert [(line["type"], line["amount"], line["invoice_line"]) for line in body["lines"]] == [
        ("invoice_line_item", 700, 0)
    ]
    assert sdk.v1.customers.retrieve(stripe_customer).balance == -700
    stripe_webhooks.deliver()
    note = CreditNote.objects.get()
    assert (note.status, note.credit_amount) == ("issued", 700)

    voided = api.post(
        f"/api/v1/credit_notes/{note.pk}/void", {"reason": "issued by mistake"}, key=tenant_a.key
    )

    assert voided.status_code == 200, voided.content
    assert voided.json()["status"] == "void"
    assert sdk.v1.credit_notes.retrieve(note.stripe_credit_note_id).status == "void"
    assert sdk.v1.customers.retrieve(stripe_customer).balance == 0
    stripe_webhooks.deliver()
    assert CreditNote.objects.get().status == "void"
    assert len(_events("credit_note.created")) == 1
    [announced] = _events("credit_note.voided")
    assert announced.data["object"]["status"] == "void"
    audit = AuditLogEntry.objects.get(action="credit_note.void_requested")
    assert (audit.target_id, audit.reason, audit.before, audit.after) == (
        note.pk,
        "issued by mistake",
        {"status": "issued"},
        {"status": "void"},
    )
    again = api.post(f"/api/v1/credit_notes/{note.pk}/void", {}, key=tenant_a.key)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "credit_note_not_voidable")


def test_a_credit_note_of_an_open_invoice_lowers_what_it_still_owes(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _open_invoice(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)

    response = _credit(api, tenant_a, invoice, {"amount": 400})

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["type"], body["pre_payment_amount"], body["post_payment_amount"]) == ("pre_payment", 400, 0)
    assert stripe_sdk().v1.invoices.retrieve(invoice.stripe_invoice_id).amount_remaining == 1100
    stripe_webhooks.deliver()  # Stripe's invoice.updated moves the invoice's mirror
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due, invoice.amount_remaining) == ("open", 1100, 1100)


def test_crediting_more_than_the_invoice_is_refused_and_nothing_happens_at_stripe(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _paid_invoice(api, tenant_a, stripe_emulator, stripe_webhooks)

    response = _credit(
        api, tenant_a, invoice, {"amount": invoice.total + 1, "refund_amount": invoice.total + 1}
    )

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert "amount" in error["message"]
    assert _stripe_notes(stripe_sdk(), invoice) == []
    assert not stripe_sdk().v1.refunds.list({"payment_intent": invoice.stripe_payment_intent_id}).data
    assert not CreditNote.objects.exists()
    # Amounts that do not add up: the same 400.
    split = _credit(api, tenant_a, invoice, {"amount": 500, "refund_amount": 300})
    assert (split.status_code, split.json()["error"]["code"]) == (400, "invalid_request")
    assert _stripe_notes(stripe_sdk(), invoice) == []


def test_another_tenants_invoice_is_not_found_and_nothing_is_credited(
    api, tenant_a, tenant_b, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _paid_invoice(api, tenant_a, stripe_emulator, stripe_webhooks)

    response = _credit(api, tenant_b, invoice, {"amount": 500, "refund_amount": 500})

    assert (response.status_code, response.json()["error"]["code"]) == (404, "resource_missing")
    assert _stripe_notes(stripe_sdk(), invoice) == []
    assert not AuditLogEntry.objects.filter(action="credit_note.requested").exists()


def test_a_credit_note_retried_after_three_lost_answers_is_one_at_stripe(
    api,
    tenant_a,
    catalog,
    stripe_emulator,
    stripe_webhooks,
    stripe_sdk,
    wire,  # noqa: F811
):
    invoice = _paid_invoice(api, tenant_a, stripe_emulator, stripe_webhooks)
    wire.lose("POST", CREATE_PATH, times=3)
    body = {"amount": 300, "refund_amount": 300}

    first = _credit(api, tenant_a, invoice, body, key="cn-lost")

    assert (first.status_code, first.json()["error"]["code"]) == (503, "provider_unavailable")
    assert len(_stripe_notes(stripe_sdk(), invoice)) == 1  # Stripe acted
    assert AuditLogEntry.objects.filter(action="credit_note.requested").count() == 1

    retry = _credit(api, tenant_a, invoice, body, key="cn-lost")

    assert retry.status_code == 201, retry.content
    [stripe_note] = _stripe_notes(stripe_sdk(), invoice)
    assert retry.json()["stripe_credit_note_id"] == stripe_note.id
    writes = [r for r in wire.reached if r[:2] == ("POST", CREATE_PATH)]
    assert len({key for _, _, key in writes}) == 1  # every attempt under the operation's one key
    assert len(stripe_sdk().v1.refunds.list({"payment_intent": invoice.stripe_payment_intent_id}).data) == 1
    stripe_webhooks.deliver()
    assert CreditNote.objects.count() == 1
    assert len(_events("credit_note.created")) == 1
    assert AuditLogEntry.objects.filter(action="credit_note.requested").count() == 1


def test_a_void_invoice_is_not_credited_and_nothing_happens_at_stripe(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _open_invoice(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)
    stripe_sdk().v1.invoices.void_invoice(invoice.stripe_invoice_id)  # at Stripe: the mirror still says open

    response = _credit(api, tenant_a, invoice, {"amount": 400})

    assert (response.status_code, response.json()["error"]["code"]) == (409, "invoice_not_creditable")
    assert _stripe_notes(stripe_sdk(), invoice) == []
    assert not AuditLogEntry.objects.filter(action="credit_note.requested").exists()
    # Neither an amount and lines together, nor neither of them.
    for body in ({}, {"amount": 400, "lines": [{"invoice_line": 0, "quantity": 1}]}):
        assert _credit(api, tenant_a, invoice, body).status_code == 400


def test_a_void_retried_after_three_lost_answers_is_one_void_at_stripe(
    api,
    tenant_a,
    catalog,
    stripe_emulator,
    stripe_webhooks,
    stripe_sdk,
    wire,  # noqa: F811
):
    invoice = _paid_invoice(api, tenant_a, stripe_emulator, stripe_webhooks)
    created = _credit(api, tenant_a, invoice, {"amount": 300, "credit_amount": 300}).json()
    void_path = f"/v1/credit_notes/{created['stripe_credit_note_id']}/void"
    wire.lose("POST", void_path, times=3)

    def void():
        return api.post(
            f"/api/v1/credit_notes/{created['id']}/void",
            {},
            key=tenant_a.key,
            headers={"Idempotency-Key": "v"},
        )

    first = void()

    assert (first.status_code, first.json()["error"]["code"]) == (503, "provider_unavailable")
    assert stripe_sdk().v1.credit_notes.retrieve(created["stripe_credit_note_id"]).status == "void"
    retry = void()
    assert (retry.status_code, retry.json()["status"]) == (200, "void")
    writes = [r for r in wire.reached if r[:2] == ("POST", void_path)]
    assert (len(writes), len({key for _, _, key in writes})) == (3, 1)
    stripe_webhooks.deliver()
    assert len(_events("credit_note.voided")) == 1
    assert AuditLogEntry.objects.filter(action="credit_note.void_requested").count() == 1
