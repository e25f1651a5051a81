"""A paid invoice settles its payment with the rows the event holds: the payment locked once (not again by its
transition), and the invoice's plan lines taken from the invoice just mirrored (not read again)."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Invoice, Payment
from billing.services.entitlement_facts import _plan_period_facts
from entitlements.models import PlanPeriod
from tests.e2e.test_subscription_lifecycle import _subscribe

PLAN_LINES_READ = 'SELECT "billing_invoice"."id", "billing_invoice"."project_id", "billing_invoice"."stripe_subscription_id"'


def test_a_renewal_settles_its_payment_without_reading_it_or_its_invoice_again(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    assert PlanPeriod.objects.count() == 1
    stripe_emulator.advance(31 * 86400)
    with CaptureQueriesContext(connection) as queries:
        stripe_webhooks.deliver()
    renewal = Payment.objects.get(source=Payment.Source.INVOICE)
    assert renewal.status == Payment.Status.SUCCEEDED
    assert PlanPeriod.objects.filter(payment_id=renewal.pk).count() == 1
    assert not [q["sql"] for q in queries if q["sql"].startswith(PLAN_LINES_READ)]
    payment_reads = [
        q["sql"]
        for q in queries
        if q["sql"].startswith('SELECT "billing_payment"."id"') and f"'{renewal.pk}'" in q["sql"]
    ]
    assert not payment_reads  # created by the event's transaction, which holds it since


def test_an_invoice_that_is_not_the_payments_is_not_taken_for_it(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    payment = Payment.objects.get()
    invoice = Invoice.objects.get(stripe_invoice_id=payment.stripe_invoice_id)
    other = Invoice(
        project_id=invoice.project_id, stripe_invoice_id="in_other", billing_reason="manual", status="paid"
    )
    facts = _plan_period_facts(payment, invoice=other)
    assert facts is not None
    assert facts.invoice_id == invoice.pk
    assert _plan_period_facts(payment, invoice=invoice) == facts
