"""`replay_webhooks --project`: every stored event that belongs to the project, on its own Stripe account or on
the platform's (where the event's `project` is empty), including the events whose object does not name it."""

import io

from django.core.management import call_command

from customers.models import Customer
from webhooks.models import StripeEvent

OK = "https://app.example.com/ok"


def _subscribe(api, tenant, stripe_emulator, stripe_webhooks):
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": "user-1", "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=tenant.key,
    ).json()
    stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{created['stripe_session_id']}/complete",
        query="",
        body=b"card=4242424242424242",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    stripe_webhooks.deliver()


def _replay(*args):
    out = io.StringIO()
    call_command("replay_webhooks", *args, stdout=out)
    return out.getvalue()


def _belongs(event, project, stripe_customer):
    return event.tenant == project.pk or event.ordering_key == f"platform:{stripe_customer}"


def test_project_on_the_platform_account_replays_its_events_and_no_other_tenants(
    api, tenant_a, tenant_b, catalog, catalog_b, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    _subscribe(api, tenant_b, stripe_emulator, stripe_webhooks)
    customer_a = Customer.objects.get(project=tenant_a.project).stripe_customer_id
    customer_b = Customer.objects.get(project=tenant_b.project).stripe_customer_id
    events = list(StripeEvent.objects.all())
    assert {e.project_id for e in events} == {None}  # the platform's account: no event names a project
    of_a = {e.stripe_event_id for e in events if _belongs(e, tenant_a.project, customer_a)}
    of_b = {e.stripe_event_id for e in events if _belongs(e, tenant_b.project, customer_b)}
    # The invoice's events name neither project in their object: theirs only through the customer.
    paid_a = next(e for e in events if e.type == "invoice.paid" and e.stripe_event_id in of_a)
    assert paid_a.tenant == ""
    assert of_a
    assert of_b
    assert not of_a & of_b

    out = _replay("--project", "alpha", "--status", "any", "--dry-run")

    listed = {line.split()[2] for line in out.splitlines() if line.startswith("would replay")}
    assert listed == of_a
    assert out.splitlines()[-1] == f"Would replay {len(of_a)} event(s)."
    assert set(StripeEvent.objects.values_list("status", flat=True)) <= {"processed", "ignored"}


def test_invoice_payment_event_keyed_by_its_invoice_is_found_through_the_invoices_customer(
    api, tenant_a, tenant_b, catalog, catalog_b, stripe_emulator, stripe_webhooks
):
    """An event whose body names no customer and which was never handed over to its customer's key (it failed
    before): it belongs to the project whose invoice it is about."""
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    _subscribe(api, tenant_b, stripe_emulator, stripe_webhooks)
    paid = StripeEvent.objects.filter(type="invoice_payment.paid")
    assert paid.count() == 2
    for event in paid:  # as stored, before the hand-over: keyed by the invoice
        event.ordering_key = f"platform:{event.payload['data']['object']['invoice']}"
        event.status = "failed"
        event.save(update_fields=["ordering_key", "status"])
    invoice_a = Customer.objects.get(project=tenant_a.project).invoices.get().stripe_invoice_id
    mine = StripeEvent.objects.get(type="invoice_payment.paid", ordering_key=f"platform:{invoice_a}")

    out = _replay("--project", "alpha", "--dry-run")

    assert (
        out
        == f"would replay {mine.stripe_event_id} invoice_payment.paid (failed)\nWould replay 1 event(s).\n"
    )
