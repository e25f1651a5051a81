"""Reconciliation: drift made in Stripe behind Tollgate's back (no webhooks delivered) is detected, recorded,
and with --fix repaired through the same functions the webhook processors use."""

import io
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import Drift, Invoice, Payment, ReconciliationRun, Subscription
from tests.billing.payment_factories import paid_credit_packs

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
    return Subscription.objects.get()


def _reconcile(*args):
    out = io.StringIO()
    try:
        call_command("reconcile", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), str(exc)
    return out.getvalue(), None


def test_in_sync_state_has_no_drift(api, tenant_a, catalog, stripe_emulator, stripe_webhooks):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    out, error = _reconcile("--project", tenant_a.project.slug)
    assert error is None, out
    run = ReconciliationRun.objects.get()
    assert (run.status, run.drift_count, run.checked >= 2) == ("completed", 0, True)


def test_subscription_changed_at_stripe_is_detected_then_fixed(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    subscription = _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    stripe_sdk().v1.subscriptions.update(subscription.stripe_subscription_id, {"cancel_at_period_end": True})
    out, error = _reconcile("--project", tenant_a.project.slug)
    # Stripe stamps `canceled_at` with the time of the request that scheduled the cancellation.
    assert error == "2 drift item(s) remain unfixed."
    stripe_subscription = stripe_sdk().v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    canceled_at = datetime.fromtimestamp(stripe_subscription.canceled_at, tz=UTC)
    drifts = list(
        Drift.objects.order_by("field").values_list(
            "kind", "object_type", "field", "local_value", "stripe_value", "status"
        )
    )
    assert drifts == [
        ("mismatch", "subscription", "cancel_at_period_end", "False", "True", "open"),
        ("mismatch", "subscription", "canceled_at", "None", str(canceled_at), "open"),
    ]
    assert Subscription.objects.get().cancel_at_period_end is False  # detection changes nothing

    out, error = _reconcile("--project", tenant_a.project.slug, "--fix")
    assert error is None, out
    assert (Subscription.objects.get().cancel_at_period_end, Subscription.objects.get().canceled_at) == (
        True,
        canceled_at,
    )
    assert ReconciliationRun.objects.latest("started_at").fixed_count == 2
    # The dry run's drift was repaired by the fix run: nothing stays open for /metrics and the dashboard.
    assert sorted(Drift.objects.values_list("status", flat=True)) == [
        "fixed",
        "fixed",
        "resolved",
        "resolved",
    ]
    out, error = _reconcile("--project", tenant_a.project.slug)
    assert error is None
    assert ReconciliationRun.objects.latest("started_at").drift_count == 0


def test_missed_renewal_invoice_and_payment_are_repaired(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    stripe_emulator.advance(31 * 86400)  # a renewal whose webhooks never arrive
    out, error = _reconcile("--project", tenant_a.project.slug, "--dry-run", "--fix")
    assert error is not None
    kinds = sorted(Drift.objects.values_list("object_type", "kind"))
    assert ("invoice", "missing_locally") in kinds
    assert ("payment", "missing_locally") in kinds
    assert Invoice.objects.count() == 1  # dry run: nothing applied

    out, error = _reconcile("--project", tenant_a.project.slug, "--fix")
    assert error is None, out
    assert Invoice.objects.filter(status="paid").count() == 2
    renewal = Payment.objects.get(source="invoice")
    assert (renewal.status, renewal.amount) == ("succeeded", 3000)
    assert Subscription.objects.get().current_period_end > Subscription.objects.get().current_period_start


def test_an_invoice_and_its_payment_that_lost_their_subscription_are_repaired_together(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    """What a first invoice applied beside its subscription's creation was left with before the two took a
    lock (tests/billing/test_invoice_subscription_link.py): neither linked. Repairing the invoice alone left the
    payment without its subscription (the exactly-once property test, seed 3)."""
    subscription = _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    invoice = Invoice.objects.get()
    payment = Payment.objects.get(stripe_invoice_id=invoice.stripe_invoice_id)
    assert (invoice.subscription_id, payment.stripe_subscription_id) == (
        subscription.pk,
        subscription.stripe_subscription_id,
    )
    Invoice.objects.filter(pk=invoice.pk).update(subscription=None)
    Payment.objects.filter(pk=payment.pk).update(stripe_subscription_id="")

    out, error = _reconcile("--project", tenant_a.project.slug)
    assert error == "2 drift item(s) remain unfixed."
    assert sorted(
        Drift.objects.values_list("object_type", "stripe_id", "field", "local_value", "stripe_value")
    ) == [
        ("invoice", invoice.stripe_invoice_id, "subscription", "", subscription.stripe_subscription_id),
        (
            "payment",
            invoice.stripe_invoice_id,
            "stripe_subscription_id",
            "",
            subscription.stripe_subscription_id,
        ),
    ]
    assert Payment.objects.get(pk=payment.pk).stripe_subscription_id == ""  # detection changes nothing

    out, error = _reconcile("--project", tenant_a.project.slug, "--fix")
    assert error is None, out
    assert Invoice.objects.get(pk=invoice.pk).subscription_id == subscription.pk
    repaired = Payment.objects.get(pk=payment.pk)
    assert (repaired.stripe_subscription_id, repaired.status, repaired.amount) == (
        subscription.stripe_subscription_id,
        "succeeded",
        3000,
    )
    assert ReconciliationRun.objects.latest("started_at").fixed_count == 2
    out, error = _reconcile("--project", tenant_a.project.slug)
    assert error is None, out


def test_open_payment_settled_at_stripe_is_repaired(api, tenant_a, catalog, stripe_sdk):
    created = api.post(
        "/api/v1/payments", {"customer": "u", "price": "sticker", "flow": "intent"}, key=tenant_a.key
    ).json()
    stripe_sdk().v1.payment_intents.confirm(
        created["stripe_payment_intent_id"], {"payment_method": "pm_card_visa"}
    )
    out, error = _reconcile("--project", tenant_a.project.slug, "--fix")
    assert error is None, out
    assert Payment.objects.get(pk=created["id"]).status == "succeeded"
    assert "payment_intent" in out


@pytest.mark.parametrize("args", [("--project", "nope"), ("--since", "yesterday")])
def test_bad_arguments_fail_cleanly(db, args):
    with pytest.raises(CommandError):
        call_command("reconcile", *args, stdout=io.StringIO())
    assert ReconciliationRun.objects.count() == 0


def _refund_drifts():
    return sorted(
        (d.field, d.local_value, d.stripe_value, d.status) for d in Drift.objects.filter(object_type="refund")
    )


def test_refunds_are_compared_both_ways_and_fixed(api, tenant_a, catalog, stripe_sdk, stripe_emulator):
    """A refund made at Stripe whose events were lost, one of ours whose answer was lost (Stripe made it), and
    one of ours that never reached Stripe: reconcile sees all three, --fix makes them Stripe's."""
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from billing.models import Refund

    sdk = stripe_sdk()
    payment = Payment.objects.get(pk=paid_credit_packs(api, tenant_a, sdk)["id"])
    intent = payment.stripe_payment_intent_id
    at_stripe = sdk.v1.refunds.create({"payment_intent": intent, "amount": 300})
    lost = Refund.objects.create(
        project=tenant_a.project,
        payment=payment,
        amount=400,
        currency="usd",
        status="unknown",
        operation="op-a",
    )
    sdk.v1.refunds.create(
        {"payment_intent": intent, "amount": 400, "metadata": {"tollgate_refund": lost.pk}},
        {"idempotency_key": "refund:op-a"},
    )
    never = Refund.objects.create(
        project=tenant_a.project, payment=payment, amount=500, currency="usd", operation="op-b"
    )
    stripe_emulator.webhooks.sender = lambda *args: 200  # every event lost
    stripe_emulator.flush_webhooks()

    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        out, error = _reconcile("--project", tenant_a.project.slug)
        assert error is not None  # drift found
        assert Drift.objects.filter(object_type="refund", stripe_id=at_stripe.id).exists()
        assert ("status", "unknown", "succeeded", "open") in _refund_drifts()
        assert ("status", "pending", "failed", "open") in _refund_drifts()
        assert Payment.objects.get(pk=payment.pk).amount_refunded == 0

        out, error = _reconcile("--project", tenant_a.project.slug, "--fix")

    assert sorted(Refund.objects.values_list("amount", "status")) == [
        (300, "succeeded"),
        (400, "succeeded"),
        (500, "failed"),
    ]
    assert Refund.objects.get(pk=never.pk).failure_reason == "not_sent"
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == ("partially_refunded", 700)
    out, error = _reconcile("--project", tenant_a.project.slug)
    assert error is None, out
