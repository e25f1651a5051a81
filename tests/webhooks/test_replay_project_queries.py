"""`replay_webhooks --project` on the platform's account resolves the events keyed by an invoice or a payment
intent (whose body names no customer) to their customer in a bounded number of queries, however many such keys
every project's events hold."""

from django.db.models import Model

from billing.models import Invoice
from projects.models import Project
from tests.webhooks.test_replay_project import _subscribe
from webhooks.models import StripeEvent
from webhooks.selectors import stripe_events_of_project


def _copy(row: Model, **changes: object) -> Model:
    """Another row like `row` (a real one, made through Stripe's flow), with `changes`."""
    row.pk = None
    for name, value in changes.items():
        setattr(row, name, value)
    row.save()
    return row


def _keyed_by_invoices(project: Project, count: int) -> set[str]:
    """`count` more invoices of the project's customer, each with a failed `invoice_payment.paid` event keyed by
    it (as stored before the hand-over to the customer's key); their event ids."""
    invoice = Invoice.objects.get(project=project)
    event = StripeEvent.objects.get(
        type="invoice_payment.paid", payload__data__object__invoice=invoice.stripe_invoice_id
    )
    ids = set()
    for n in range(count):
        copied = _copy(
            Invoice.objects.get(pk=invoice.pk), stripe_invoice_id=f"{invoice.stripe_invoice_id}_{n}"
        )
        ids.add(
            _copy(
                StripeEvent.objects.get(pk=event.pk),
                stripe_event_id=f"{event.stripe_event_id}_{n}",
                ordering_key=f"platform:{copied.stripe_invoice_id}",  # type: ignore[attr-defined]
                status=StripeEvent.Status.FAILED,
            ).stripe_event_id  # type: ignore[attr-defined]
        )
    return ids


def test_many_invoice_keys_are_resolved_in_a_bounded_number_of_queries(
    api,
    tenant_a,
    tenant_b,
    catalog,
    catalog_b,
    stripe_emulator,
    stripe_webhooks,
    django_assert_max_num_queries,
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    _subscribe(api, tenant_b, stripe_emulator, stripe_webhooks)
    mine = _keyed_by_invoices(tenant_a.project, 20)
    _keyed_by_invoices(tenant_b.project, 20)
    failed = StripeEvent.objects.filter(status=StripeEvent.Status.FAILED)

    with django_assert_max_num_queries(6):
        found = {e.stripe_event_id for e in stripe_events_of_project(project=tenant_a.project, events=failed)}

    assert found == mine
