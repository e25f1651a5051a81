"""`core.db.instance_from_row`: a hand-written read's rows become the instances the ORM would have made, converted
as the ORM converts them on either backend (SQLite's times parsed and made aware, secrets decrypted, JSON decoded),
so what is then compared with Stripe's values, or shown, is the same on both."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Invoice
from billing.services.invoices import invoice_apply
from core.db import instance_from_row, select_columns
from customers.models import Customer
from projects.models import Project
from tests.e2e.test_subscription_lifecycle import _subscribe


def _read(model, pk):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {select_columns(model, 't')} FROM {model._meta.db_table} t WHERE t.id = %s",
            [pk],
        )
        return instance_from_row(model, cursor.fetchone())


def _values(instance):
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def test_rows_become_the_instances_the_orm_makes(api, tenant_a, catalog, stripe_emulator, stripe_webhooks):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    invoice = Invoice.objects.get()
    customer = Customer.objects.get(pk=invoice.customer_id)
    project = Project.objects.get(pk=tenant_a.project.pk)
    for instance in (invoice, customer, project):
        read = _read(type(instance), instance.pk)
        assert _values(read) == _values(instance)
        assert read._state.adding is False
        assert read._state.db == "default"
    assert _read(Invoice, invoice.pk).created_at.tzinfo is not None
    assert _read(Project, project.pk).stripe_webhook_secret == project.stripe_webhook_secret


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
