"""A draft invoice's lines edited at Stripe through the API: one invoice item at Stripe under any retry (lost
answers and a process killed after Stripe acted included), each request audited once before it is sent, the
mirror equal to Stripe's invoice before and after its events; an invoice finalized meanwhile is refused with
nothing written at Stripe, and another tenant's invoice is not found."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from billing.models import Invoice
from core.models import AuditLogEntry
from customers.models import Customer
from tests.billing.test_lost_answers import ProcessKilled, wire  # noqa: F401 (a fixture)
from tests.e2e.test_subscription_lifecycle import _subscribe

ITEMS_PATH = "/v1/invoiceitems"


def _draft(api, tenant, stripe_emulator, stripe_webhooks, stripe_sdk) -> Invoice:
    """A draft invoice of one invoice item of 1500 (send_invoice, not finalized) made at Stripe for a subscriber,
    and mirrored."""
    _subscribe(api, tenant, stripe_emulator, stripe_webhooks)
    sdk = stripe_sdk()
    stripe_customer = Customer.objects.get(project=tenant.project, external_id="user-1").stripe_customer_id
    draft = sdk.v1.invoices.create(
        {"customer": stripe_customer, "collection_method": "send_invoice", "days_until_due": 30}
    )
    sdk.v1.invoice_items.create(
        {"customer": stripe_customer, "invoice": draft.id, "amount": 1500, "description": "Setup"}
    )
    stripe_webhooks.deliver()
    invoice = Invoice.objects.get(stripe_invoice_id=draft.id)
    assert (invoice.status, invoice.total, [line["amount"] for line in invoice.lines]) == (
        "draft",
        1500,
        [1500],
    )
    return invoice


def _at_stripe(stripe_sdk, invoice: Invoice) -> tuple[str, int, list[tuple[str, int]]]:
    held = stripe_sdk().v1.invoices.retrieve(invoice.stripe_invoice_id)
    return (
        str(held.status),
        int(held.total),
        sorted((str(li.description), int(li.amount)) for li in held.lines.data),
    )


def _mirror(invoice: Invoice) -> tuple[str, int, list[tuple[str, int]]]:
    held = Invoice.objects.get(pk=invoice.pk)
    return held.status, held.total, sorted((line["description"], line["amount"]) for line in held.lines)


def _add(api, tenant, invoice: Invoice, body: dict, key: str = ""):
    headers = {"Idempotency-Key": key} if key else {}
    return api.post(f"/api/v1/invoices/{invoice.pk}/lines", body, key=tenant.key, headers=headers)


def test_a_line_added_changed_and_removed_is_audited_and_the_mirror_follows_stripe(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _draft(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)

    added = _add(api, tenant_a, invoice, {"amount": 2500, "description": "Onboarding", "reason": "agreed"})

    assert added.status_code == 201, added.content
    body = added.json()
    assert (body["status"], body["subtotal"], body["total"], body["amount_due"]) == (
        "draft",
        4000,
        4000,
        4000,
    )
    assert sorted((line["description"], line["amount"], line["type"]) for line in body["lines"]) == [
        ("Onboarding", 2500, "invoice_item"),
        ("Setup", 1500, "invoice_item"),
    ]
    onboarding = next(line["id"] for line in body["lines"] if line["description"] == "Onboarding")
    audit = AuditLogEntry.objects.get(action="invoice.line_add_requested")
    assert (audit.target_id, audit.actor_type, audit.reason) == (invoice.pk, "api_key", "agreed")
    assert audit.before == {"status": "draft", "total": 1500}
    assert audit.after == {"amount": 2500, "description": "Onboarding", "operation": None}

    changed = api.post(
        f"/api/v1/invoices/{invoice.pk}/lines/{onboarding}",
        {"amount": 2000, "description": "Onboarding (discounted)"},
        key=tenant_a.key,
    )

    assert changed.status_code == 200, changed.content
    assert changed.json()["total"] == 3500
    assert [line["id"] for line in changed.json()["lines"]] == [line["id"] for line in body["lines"]]
    setup = next(line["id"] for line in body["lines"] if line["description"] == "Setup")

    removed = api.delete(f"/api/v1/invoices/{invoice.pk}/lines/{setup}", key=tenant_a.key)

    assert removed.status_code == 200, removed.content
    assert (removed.json()["total"], [line["id"] for line in removed.json()["lines"]]) == (2000, [onboarding])
    assert _at_stripe(stripe_sdk, invoice) == ("draft", 2000, [("Onboarding (discounted)", 2000)])
    assert _mirror(invoice) == _at_stripe(stripe_sdk, invoice)
    # Stripe's events of the edits (invoice.updated, invoiceitem.*) change nothing more.
    stripe_webhooks.deliver()
    assert _mirror(invoice) == ("draft", 2000, [("Onboarding (discounted)", 2000)])
    update_audit = AuditLogEntry.objects.get(action="invoice.line_update_requested")
    assert update_audit.before == {"line": onboarding, "amount": 2500, "description": "Onboarding"}
    assert AuditLogEntry.objects.get(action="invoice.line_remove_requested").before == {
        "line": setup,
        "amount": 1500,
        "description": "Setup",
    }


def test_two_edits_in_one_second_delivered_in_reverse_leave_the_mirror_on_stripes_lines(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _draft(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)
    [line] = Invoice.objects.get(pk=invoice.pk).lines
    path = f"/api/v1/invoices/{invoice.pk}/lines/{line['stripe_line_id']}"
    with time_machine.travel(timezone.now(), tick=False):  # Stripe's events of both edits carry one second
        assert api.post(path, {"amount": 1700}, key=tenant_a.key).status_code == 200
        assert api.post(path, {"amount": 1900}, key=tenant_a.key).status_code == 200
    assert _mirror(invoice) == ("draft", 1900, [("Setup", 1900)])

    # Stripe delivers the second edit's invoice.updated first, then the first's: same second, older state.
    stripe_emulator.webhooks._queue.reverse()
    stripe_webhooks.deliver()

    assert _at_stripe(stripe_sdk, invoice) == ("draft", 1900, [("Setup", 1900)])
    assert _mirror(invoice) == ("draft", 1900, [("Setup", 1900)])


def test_an_add_retried_after_three_lost_answers_adds_one_line(
    api,
    tenant_a,
    catalog,
    stripe_emulator,
    stripe_webhooks,
    stripe_sdk,
    wire,  # noqa: F811
):
    invoice = _draft(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)
    wire.lose("POST", ITEMS_PATH, times=3)
    body = {"amount": 700, "description": "Extra seat"}

    first = _add(api, tenant_a, invoice, body, key="line-1")

    assert (first.status_code, first.json()["error"]["code"]) == (503, "provider_unavailable")
    assert _at_stripe(stripe_sdk, invoice) == ("draft", 2200, [("Extra seat", 700), ("Setup", 1500)])  # acted
    assert AuditLogEntry.objects.filter(action="invoice.line_add_requested").count() == 1  # on record

    retry = _add(api, tenant_a, invoice, body, key="line-1")

    assert (retry.status_code, retry.json()["total"]) == (201, 2200)
    writes = [r for r in wire.reached if r[:2] == ("POST", ITEMS_PATH)]
    # The first attempt and the SDK's two retries, then the retry's one request: all under the operation's one
    # key, so Stripe replayed its first answer and holds one item.
    assert (len(writes), len({key for _, _, key in writes})) == (4, 1)
    assert len(stripe_sdk().v1.invoice_items.list({"invoice": invoice.stripe_invoice_id}).data) == 2
    assert _at_stripe(stripe_sdk, invoice) == ("draft", 2200, [("Extra seat", 700), ("Setup", 1500)])
    assert AuditLogEntry.objects.filter(action="invoice.line_add_requested").count() == 1
    stripe_webhooks.deliver()
    assert _mirror(invoice) == ("draft", 2200, [("Extra seat", 700), ("Setup", 1500)])


def test_a_removal_whose_process_died_after_stripe_acted_is_finished_by_its_retry(
    api,
    settings,
    tenant_a,
    catalog,
    stripe_emulator,
    stripe_webhooks,
    stripe_sdk,
    wire,  # noqa: F811
):
    invoice = _draft(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)
    [line] = Invoice.objects.get(pk=invoice.pk).lines
    item = str(stripe_sdk().v1.invoice_items.list({"invoice": invoice.stripe_invoice_id}).data[0].id)
    wire.die("DELETE", f"{ITEMS_PATH}/{item}")
    path = f"/api/v1/invoices/{invoice.pk}/lines/{line['stripe_line_id']}"

    with pytest.raises(ProcessKilled):
        api.delete(path, key=tenant_a.key, headers={"Idempotency-Key": "rm-1"})

    assert _at_stripe(stripe_sdk, invoice) == ("draft", 0, [])  # Stripe removed it; no answer came back

    # The dead process's claim holds the key until the lock timeout; then the retry takes it over.
    busy = api.delete(path, key=tenant_a.key, headers={"Idempotency-Key": "rm-1"})
    assert (busy.status_code, busy.json()["error"]["code"]) == (409, "idempotency_key_in_use")
    with time_machine.travel(timezone.now() + settings.IDEMPOTENCY_LOCK_TIMEOUT + timedelta(seconds=1)):
        retry = api.delete(path, key=tenant_a.key, headers={"Idempotency-Key": "rm-1"})

    assert retry.status_code == 200, retry.content
    assert (retry.json()["total"], retry.json()["lines"]) == (0, [])
    assert AuditLogEntry.objects.filter(action="invoice.line_remove_requested").count() == 1
    # Without the operation's key, a line that is not there is not found.
    again = api.delete(path, key=tenant_a.key)
    assert (again.status_code, again.json()["error"]["code"]) == (404, "invoice_line_not_found")


def test_an_invoice_finalized_meanwhile_is_refused_and_nothing_is_added(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _draft(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)
    stripe_sdk().v1.invoices.finalize_invoice(invoice.stripe_invoice_id)  # its events not delivered yet
    assert Invoice.objects.get(pk=invoice.pk).status == "draft"

    refused = _add(api, tenant_a, invoice, {"amount": 700, "description": "Too late"})

    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "invoice_not_draft")
    assert _at_stripe(stripe_sdk, invoice) == ("open", 1500, [("Setup", 1500)])
    assert not AuditLogEntry.objects.filter(action="invoice.line_add_requested").exists()
    zero = _add(api, tenant_a, invoice, {"amount": 0, "description": "Nothing"})
    assert (zero.status_code, zero.json()["error"]["type"]) == (400, "invalid_request_error")


def test_another_tenants_draft_is_not_found_and_untouched_at_stripe(
    api, tenant_a, tenant_b, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _draft(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)
    [line] = Invoice.objects.get(pk=invoice.pk).lines

    for response in (
        _add(api, tenant_b, invoice, {"amount": 700, "description": "Not yours"}),
        api.post(
            f"/api/v1/invoices/{invoice.pk}/lines/{line['stripe_line_id']}", {"amount": 1}, key=tenant_b.key
        ),
        api.delete(f"/api/v1/invoices/{invoice.pk}/lines/{line['stripe_line_id']}", key=tenant_b.key),
    ):
        assert (response.status_code, response.json()["error"]["type"]) == (404, "not_found")
    assert _at_stripe(stripe_sdk, invoice) == ("draft", 1500, [("Setup", 1500)])
    assert not AuditLogEntry.objects.filter(action__startswith="invoice.line_").exists()
