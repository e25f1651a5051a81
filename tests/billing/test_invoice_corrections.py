"""Voiding an invoice and marking it uncollectible, at Stripe, through the API and the admin: decided on Stripe's
invoice as it is now, one write at Stripe under any retry (lost answers included), the mirror and the tenant event
once, audited with the caller and the reason; another tenant's invoice is not found and nothing happens to it."""

import time

from django.contrib.auth.models import Group, User
from django.test import Client

from billing.models import Invoice
from billing.services.invoices import invoice_apply
from core.models import AuditLogEntry
from customers.models import Customer
from events.models import Event
from stripe_emulator.sdk import EmulatorHTTPClient
from stripe_gateway.client import install_http_client
from stripe_gateway.gateway import stripe_account_of
from tests.billing.stripe_invoices import open_invoice_at_stripe
from tests.billing.test_lost_answers import wire  # noqa: F401 (a fixture)
from tests.e2e.test_subscription_lifecycle import _subscribe

VOID_PATH = "/v1/invoices/{}/void"


def _open_invoice(api, tenant, stripe_emulator, stripe_webhooks, stripe_sdk, *, customer="user-1") -> Invoice:
    """A one-off invoice of 1500 (send_invoice: it stays open until paid), made at Stripe for a subscriber."""
    _subscribe(api, tenant, stripe_emulator, stripe_webhooks, customer=customer)
    stripe_customer = Customer.objects.get(project=tenant.project, external_id=customer).stripe_customer_id
    made = open_invoice_at_stripe(stripe_sdk(), stripe_customer, 1500)
    stripe_webhooks.deliver()
    invoice = Invoice.objects.get(stripe_invoice_id=made)
    assert (invoice.status, invoice.amount_remaining) == ("open", 1500)
    return invoice


def _stripe_status(stripe_sdk, invoice: Invoice) -> str:
    return str(stripe_sdk().v1.invoices.retrieve(invoice.stripe_invoice_id).status)


def _events(invoice: Invoice, kind: str) -> list[Event]:
    return [e for e in Event.objects.filter(type=kind) if e.data["object"]["id"] == invoice.pk]


def test_a_tenant_voids_an_open_invoice_at_stripe_once(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _open_invoice(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)

    response = api.post(
        f"/api/v1/invoices/{invoice.pk}/void",
        {"reason": "billed by mistake"},
        key=tenant_a.key,
        headers={"Idempotency-Key": "void-1"},
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["status"], body["total"]) == (invoice.pk, "void", 1500)
    assert _stripe_status(stripe_sdk, invoice) == "void"
    invoice.refresh_from_db()
    assert invoice.status == "void"
    stripe_webhooks.deliver()  # Stripe's invoice.voided: already applied, announced once
    assert Invoice.objects.get(pk=invoice.pk).status == "void"
    [announced] = _events(invoice, "invoice.voided")
    assert (announced.data["object"]["status"], announced.data["object"]["amount_remaining"]) == (
        "void",
        1500,
    )
    audit = AuditLogEntry.objects.get(action="invoice.void_requested")
    assert (audit.target_id, audit.actor_type, audit.reason) == (invoice.pk, "api_key", "billed by mistake")
    assert (audit.before, audit.after) == ({"status": "open"}, {"status": "void"})
    # The same request again replays its answer; a new one is refused: a void invoice is final.
    again = api.post(
        f"/api/v1/invoices/{invoice.pk}/void",
        {"reason": "billed by mistake"},
        key=tenant_a.key,
        headers={"Idempotency-Key": "void-1"},
    )
    assert (again.status_code, again["Idempotent-Replayed"]) == (200, "true")
    refused = api.post(f"/api/v1/invoices/{invoice.pk}/void", {}, key=tenant_a.key)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "invoice_not_voidable")
    assert AuditLogEntry.objects.filter(action="invoice.void_requested").count() == 1
    assert len(_events(invoice, "invoice.voided")) == 1


def test_an_invoice_marked_uncollectible_can_still_be_voided(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _open_invoice(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)

    marked = api.post(f"/api/v1/invoices/{invoice.pk}/mark_uncollectible", {}, key=tenant_a.key)

    assert marked.status_code == 200, marked.content
    assert (marked.json()["status"], marked.json()["amount_remaining"]) == ("uncollectible", 1500)
    assert _stripe_status(stripe_sdk, invoice) == "uncollectible"
    again = api.post(f"/api/v1/invoices/{invoice.pk}/mark_uncollectible", {}, key=tenant_a.key)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "invoice_not_open")
    stripe_webhooks.deliver()
    assert len(_events(invoice, "invoice.marked_uncollectible")) == 1

    voided = api.post(f"/api/v1/invoices/{invoice.pk}/void", {}, key=tenant_a.key)

    assert (voided.status_code, voided.json()["status"]) == (200, "void")
    assert _stripe_status(stripe_sdk, invoice) == "void"
    stripe_webhooks.deliver()
    assert Invoice.objects.get(pk=invoice.pk).status == "void"
    assert [a.action for a in AuditLogEntry.objects.filter(target_id=invoice.pk).order_by("created_at")] == [
        "invoice.mark_uncollectible_requested",
        "invoice.void_requested",
    ]


def test_a_paid_invoice_is_neither_voided_nor_marked_and_nothing_changes(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    paid = Invoice.objects.get()
    assert paid.status == "paid"
    for path, code in (("void", "invoice_not_voidable"), ("mark_uncollectible", "invoice_not_open")):
        response = api.post(f"/api/v1/invoices/{paid.pk}/{path}", {}, key=tenant_a.key)
        assert (response.status_code, response.json()["error"]["code"]) == (409, code)
    assert _stripe_status(stripe_sdk, paid) == "paid"
    assert Invoice.objects.get(pk=paid.pk).status == "paid"
    assert not AuditLogEntry.objects.filter(target_id=paid.pk).exists()


def test_another_tenants_invoice_is_not_found_and_stays_open_at_stripe(
    api, tenant_a, tenant_b, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _open_invoice(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)

    for path in ("void", "mark_uncollectible"):
        response = api.post(f"/api/v1/invoices/{invoice.pk}/{path}", {}, key=tenant_b.key)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "resource_missing")

    assert _stripe_status(stripe_sdk, invoice) == "open"
    assert Invoice.objects.get(pk=invoice.pk).status == "open"
    assert not AuditLogEntry.objects.filter(target_id=invoice.pk).exists()


def test_a_void_retried_after_three_lost_answers_voids_once(
    api,
    tenant_a,
    catalog,
    stripe_emulator,
    stripe_webhooks,
    stripe_sdk,
    wire,  # noqa: F811
):
    invoice = _open_invoice(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)
    wire.lose("POST", VOID_PATH.format(invoice.stripe_invoice_id), times=3)

    def void():
        return api.post(
            f"/api/v1/invoices/{invoice.pk}/void", {}, key=tenant_a.key, headers={"Idempotency-Key": "v"}
        )

    first = void()

    assert (first.status_code, first.json()["error"]["code"]) == (503, "provider_unavailable")
    assert _stripe_status(stripe_sdk, invoice) == "void"  # Stripe acted
    # The request was recorded before it was sent: on record although its answer never came.
    assert AuditLogEntry.objects.get(action="invoice.void_requested").before == {"status": "open"}

    retry = void()

    assert (retry.status_code, retry.json()["status"]) == (200, "void")
    writes = [r for r in wire.reached if r[:2] == ("POST", VOID_PATH.format(invoice.stripe_invoice_id))]
    assert len({key for _, _, key in writes}) == 1  # every attempt under the operation's one key
    assert len(writes) == 3  # the first attempt and the SDK's two retries: the retry wrote nothing more
    stripe_webhooks.deliver()
    assert len(_events(invoice, "invoice.voided")) == 1
    assert AuditLogEntry.objects.filter(action="invoice.void_requested").count() == 1


def _operator(role: str) -> Client:
    user = User.objects.create_user(f"{role}-op", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def test_finance_voids_in_the_admin_with_a_reason_and_support_cannot(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk, django_capture_on_commit_callbacks
):
    invoice = _open_invoice(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)
    form = {"action": "void", "_selected_action": [invoice.pk], "apply": "1", "reason": "duplicate invoice"}

    with django_capture_on_commit_callbacks(execute=True):
        _operator("support").post("/admin/billing/invoice/", form)
        assert _stripe_status(stripe_sdk, invoice) == "open"
        response = _operator("finance").post("/admin/billing/invoice/", form)

    assert response.status_code == 302
    assert _stripe_status(stripe_sdk, invoice) == "void"
    assert Invoice.objects.get(pk=invoice.pk).status == "void"
    audit = AuditLogEntry.objects.get(action="invoice.void_requested")
    operator = User.objects.get(username="finance-op")
    assert (audit.actor_type, audit.actor_id, audit.reason) == ("user", str(operator.pk), "duplicate invoice")


def test_a_void_refused_by_stripe_once_is_sent_again_under_a_new_key_by_the_next_call(
    api,
    tenant_a,
    catalog,
    stripe_emulator,
    stripe_webhooks,
    stripe_sdk,
    wire,  # noqa: F811
):
    # Stripe keeps a failed request's answer under its key for a day: a call of its own (no Idempotency-Key)
    # has a key of its own, so the next call is not answered that failure again.
    invoice = _open_invoice(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)
    wire.lose("POST", VOID_PATH.format(invoice.stripe_invoice_id), times=3)
    assert api.post(f"/api/v1/invoices/{invoice.pk}/void", {}, key=tenant_a.key).status_code == 503
    assert _stripe_status(stripe_sdk, invoice) == "void"  # it acted; the next call finds it done
    refused = api.post(f"/api/v1/invoices/{invoice.pk}/void", {}, key=tenant_a.key)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "invoice_not_voidable")
    writes = [r for r in wire.reached if r[:2] == ("POST", VOID_PATH.format(invoice.stripe_invoice_id))]
    assert len(writes) == 3


class PaidAfterItsRead(EmulatorHTTPClient):
    """The wire to Stripe, where the invoice is paid (by its customer, elsewhere) just after Tollgate read it."""

    def __init__(self, emulator, *, invoice: str, pay) -> None:
        super().__init__(emulator)
        self.invoice, self.pay, self.paid = invoice, pay, False

    def request(self, method, url, headers, post_data=None, **kwargs):
        answer = super().request(method, url, headers, post_data, **kwargs)
        if (
            method.upper() == "GET"
            and url.split("?")[0].endswith(f"/v1/invoices/{self.invoice}")
            and not self.paid
        ):
            self.paid = True
            self.pay()
        return answer


def test_an_invoice_paid_between_the_read_and_the_void_is_409_and_stays_paid(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _open_invoice(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)
    # Paid out of band right after Tollgate read it open: Stripe then refuses the void.
    install_http_client(
        PaidAfterItsRead(
            stripe_emulator,
            invoice=invoice.stripe_invoice_id,
            pay=lambda: stripe_sdk().v1.invoices.pay(invoice.stripe_invoice_id, {"paid_out_of_band": True}),
        )
    )

    response = api.post(f"/api/v1/invoices/{invoice.pk}/void", {}, key=tenant_a.key)

    assert (response.status_code, response.json()["error"]["code"]) == (409, "invoice_not_voidable")
    assert _stripe_status(stripe_sdk, invoice) == "paid"
    stripe_webhooks.deliver()
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"
    assert not _events(invoice, "invoice.voided")


def test_a_reconciliation_read_taken_before_a_void_does_not_reopen_the_invoice(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _open_invoice(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)
    stale = stripe_sdk().v1.invoices.retrieve(invoice.stripe_invoice_id).to_dict()  # read while open
    assert api.post(f"/api/v1/invoices/{invoice.pk}/void", {}, key=tenant_a.key).status_code == 200
    stripe_webhooks.deliver()

    # The repair's forced apply of its older read (reconciliation_invoices._invoice_repair) changes nothing.
    invoice_apply(
        account=stripe_account_of(tenant_a.project), stripe_invoice=stale, event_created=2**40, force=True
    )

    assert Invoice.objects.get(pk=invoice.pk).status == "void"
    stripe_webhooks.deliver()
    assert len(_events(invoice, "invoice.voided")) == 1


def test_an_invoice_first_seen_void_is_not_announced(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    # Voided at Stripe before Tollgate heard of it (its events lost, or an adopted account's history): the
    # invoice is mirrored as it is, and no invoice.voided tells of a change the tenant never saw begin.
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    stripe_customer = Customer.objects.get(project=tenant_a.project).stripe_customer_id
    sdk = stripe_sdk()
    made = open_invoice_at_stripe(sdk, stripe_customer, 900)
    sdk.v1.invoices.void_invoice(made)
    stripe_emulator.webhooks.clear()  # its events never came: reconciliation reads it from Stripe
    invoice_apply(
        account=stripe_account_of(tenant_a.project),
        stripe_invoice=sdk.v1.invoices.retrieve(made).to_dict(),
        event_created=int(time.time()),
        force=True,
    )

    invoice = Invoice.objects.get(stripe_invoice_id=made)
    assert invoice.status == "void"
    assert not _events(invoice, "invoice.voided")
