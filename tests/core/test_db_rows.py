"""The reads of a Stripe event's path written out by hand (the invoice under its lock, the inbox's claim) and the
customers of a Stripe customer id give the instances the ORM would have made, converted as the ORM converts them
on either backend (SQLite's times parsed and made aware, secrets decrypted, JSON decoded), so what is then
compared with Stripe's values, or shown, is the same on both."""

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.models import Invoice
from billing.services.invoices import _invoice_locked, invoice_apply
from customers.models import Customer
from customers.services.customers import _customers_with_stripe_id
from tests.e2e.test_subscription_lifecycle import _subscribe
from webhooks.models import StripeEvent
from webhooks.services.process import _claim


def _values(instance):
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def _loaded(instance):
    assert instance._state.adding is False
    assert instance._state.db == "default"
    return _values(instance)


def test_the_reads_give_the_instances_the_orm_makes(api, tenant_a, catalog, stripe_emulator, stripe_webhooks):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    invoice = Invoice.objects.get()
    customer = Customer.objects.select_related("project").get(pk=invoice.customer_id)
    with transaction.atomic():
        locked, mirrored = _invoice_locked(
            project_id=invoice.project_id,
            stripe_invoice_id=invoice.stripe_invoice_id,
            stripe_subscription_id=invoice.stripe_subscription_id,
        )
        assert _invoice_locked(
            project_id=invoice.project_id, stripe_invoice_id="in_none", stripe_subscription_id=""
        ) == (None, None)
    assert _loaded(locked) == _values(invoice)
    assert not hasattr(locked, "mirrored_subscription_id")
    assert invoice.subscription_id is not None
    assert mirrored == invoice.subscription_id
    assert locked.created_at.tzinfo is not None
    assert locked.lines == invoice.lines
    (found,) = _customers_with_stripe_id(customer.stripe_customer_id)
    assert _loaded(found) == _values(customer)
    assert _loaded(found.project) == _values(customer.project)
    assert found.project.stripe_webhook_secret == customer.project.stripe_webhook_secret
    assert found.created_at.tzinfo is not None


def test_the_claim_gives_the_rows_it_wrote_with_whether_each_was_an_orphan(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    first, second = StripeEvent.objects.order_by("stripe_created", "received_at", "id")[:2]
    StripeEvent.objects.filter(pk__in=[first.pk, second.pk]).update(
        status=StripeEvent.Status.RECEIVED, ordering_key="key-claimed", next_attempt_at=None
    )
    StripeEvent.objects.filter(pk=second.pk).update(status=StripeEvent.Status.PROCESSING)
    claimed = _claim("key-claimed")
    assert [(event.pk, orphan) for event, orphan in claimed] == [(first.pk, False), (second.pk, True)]
    for event, _ in claimed:
        assert _loaded(event) == _values(StripeEvent.objects.get(pk=event.pk))
        assert event.status == StripeEvent.Status.PROCESSING
        assert event.processing_started_at.tzinfo is not None
        assert not hasattr(event, "was")
    assert claimed[0][0].payload == first.payload


def test_an_invoice_applied_again_as_stripe_holds_it_writes_nothing(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    invoice = Invoice.objects.get()
    stripe_invoice = stripe_sdk().v1.invoices.retrieve(invoice.stripe_invoice_id).to_dict()
    with CaptureQueriesContext(connection) as queries:
        applied = invoice_apply(
            account="platform", stripe_invoice=stripe_invoice, event_created=invoice.stripe_event_created
        )
    assert applied is not None
    assert applied.pk == invoice.pk
    assert [q["sql"] for q in queries if q["sql"].startswith("UPDATE")] == []
    assert Invoice.objects.get().updated_at == invoice.updated_at
    assert _values(Invoice.objects.get()) == _values(invoice)
