"""Money state converges on Stripe's whatever Stripe's webhooks do: arrive twice, late, out of order, in the
same second, or never — and the repair tools (replay_webhooks --fetch-missing, reconcile --fix) close the rest.

Each test captures the emulator's signed deliveries instead of sending them, then delivers the ones it wants,
in the order it wants, to Tollgate's intake (issue #14, points 1–7).
"""

import io
import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from billing.models import Drift, Invoice, Payment, Subscription
from events.models import Event
from webhooks.models import StripeEvent

OK = "https://app.example.com/ok"


class Captured:
    """The emulator's deliveries, kept instead of sent; `deliver` posts chosen ones to the intake."""

    def __init__(self, stripe_webhooks: Any) -> None:
        self.bridge = stripe_webhooks
        self.deliveries: list[tuple[str, bytes, dict[str, str]]] = []
        stripe_webhooks.emulator.webhooks.sender = self._record
        self.client = Client()

    def _record(self, url: str, body: bytes, headers: Any) -> int:
        self.deliveries.append((url, body, dict(headers)))
        return 200

    def collect(self) -> list[dict[str, Any]]:
        """Flushes the emulator's queue into the capture; returns the events captured so far."""
        self.bridge.emulator.flush_webhooks()
        return [json.loads(body) for _, body, _ in self.deliveries]

    def deliver(self, events: Iterable[dict[str, Any]]) -> None:
        by_id = {json.loads(body)["id"]: (body, headers) for _, body, headers in self.deliveries}
        for event in events:
            body, headers = by_id[event["id"]]
            with self.bridge.capture(execute=True):
                response = self.client.post(
                    "/webhooks/stripe",
                    data=body,
                    content_type="application/json",
                    headers={"Stripe-Signature": headers["Stripe-Signature"]},
                )
            assert response.status_code == 200, response.content


@pytest.fixture
def captured(stripe_webhooks: Any) -> Captured:
    return Captured(stripe_webhooks)


@pytest.fixture
def credit_shop(api, tenant_a, catalog):
    """The credit pack (`credits-1000`, $15) gives 1,000 `ai_credits`."""
    api.post("/api/v1/features", {"key": "ai_credits", "name": "AI", "type": "credits"}, key=tenant_a.key)
    assert (
        api.patch(
            "/api/v1/products/credits", {"features": {"ai_credits": 1000}}, key=tenant_a.key
        ).status_code
        == 200
    )
    return catalog


def _complete(stripe_emulator, session_id, card="4242424242424242"):
    response = stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{session_id}/complete",
        query="",
        body=f"card={card}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 200, response.body


def _credits(api, tenant_a, customer="user-1"):
    answer = api.get(f"/api/v1/credits?customer={customer}&feature=ai_credits", key=tenant_a.key)
    return answer.json()["balance"]


def _subscribe(api, tenant_a, stripe_emulator, customer="user-1"):
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": customer, "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=tenant_a.key,
    ).json()
    _complete(stripe_emulator, created["stripe_session_id"])
    return created


def _types(events):
    return [e["type"] for e in events]


def _reconcile(*args):
    out = io.StringIO()
    call_command("reconcile", *args, stdout=out)
    return out.getvalue()


# --- 1. refunds --------------------------------------------------------------------------------------------


def test_refund_handled_before_the_payment_was_marked_paid_still_ends_refunded(
    api, tenant_a, credit_shop, stripe_sdk, stripe_emulator, captured
):
    created = api.post(
        "/api/v1/payments",
        {
            "customer": "user-1",
            "price": "credits-1000",
            "flow": "checkout",
            "success_url": OK,
            "cancel_url": OK,
        },
        key=tenant_a.key,
    ).json()
    _complete(stripe_emulator, created["stripe_checkout_session_id"])
    intent = stripe_sdk().v1.checkout.sessions.retrieve(created["stripe_checkout_session_id"]).payment_intent
    stripe_sdk().v1.refunds.create({"payment_intent": intent})
    events = captured.collect()
    refunded = [e for e in events if e["type"] == "charge.refunded"]
    others = [e for e in events if e["type"] != "charge.refunded"]
    captured.deliver(refunded + list(reversed(others)))  # the refund first, the success events after

    payment = Payment.objects.get(pk=created["id"])
    charge = stripe_sdk().v1.charges.list({"payment_intent": intent}).data[0]
    assert (payment.status, payment.amount_refunded, payment.stripe_payment_intent_id) == (
        "refunded",
        charge.amount_refunded,
        intent,
    )
    assert charge.amount_refunded == 1500
    assert _credits(api, tenant_a) == 0
    announced = list(Event.objects.filter(type__startswith="payment.").values_list("type", flat=True))
    assert sorted(announced) == ["payment.refunded", "payment.succeeded"]


def test_reconcile_finds_and_repairs_a_refund_whose_event_was_lost(
    api, tenant_a, credit_shop, stripe_sdk, stripe_emulator, captured
):
    created = api.post(
        "/api/v1/payments",
        {"customer": "user-1", "price": "credits-1000", "flow": "intent"},
        key=tenant_a.key,
    ).json()
    stripe_sdk().v1.payment_intents.confirm(
        created["stripe_payment_intent_id"], {"payment_method": "pm_card_visa"}
    )
    captured.deliver(captured.collect())
    assert (Payment.objects.get(pk=created["id"]).status, _credits(api, tenant_a)) == ("succeeded", 1000)
    stripe_sdk().v1.refunds.create({"payment_intent": created["stripe_payment_intent_id"]})
    captured.collect()  # charge.refunded is lost

    out = _reconcile("--project", tenant_a.project.slug, "--fix")
    assert "[fixed] mismatch charge" in out, out
    assert "amount_refunded: local='0' stripe='1500'" in out, out
    payment = Payment.objects.get(pk=created["id"])
    assert (payment.status, payment.amount_refunded) == ("refunded", 1500)
    assert _credits(api, tenant_a) == 0
    assert _reconcile("--project", tenant_a.project.slug).endswith("0 drift, 0 fixed.\n")


def test_reconcile_records_a_dispute_whose_events_were_lost(
    api, tenant_a, credit_shop, stripe_sdk, stripe_emulator, captured
):
    created = api.post(
        "/api/v1/payments",
        {"customer": "user-1", "price": "credits-1000", "flow": "intent"},
        key=tenant_a.key,
    ).json()
    stripe_sdk().v1.payment_intents.confirm(
        created["stripe_payment_intent_id"], {"payment_method": "pm_card_createDispute"}
    )
    events = captured.collect()
    captured.deliver([e for e in events if not e["type"].startswith("charge.dispute.")])
    assert Payment.objects.get(pk=created["id"]).status == "succeeded"
    dispute = stripe_sdk().v1.disputes.list({"payment_intent": created["stripe_payment_intent_id"]}).data[0]

    out = _reconcile("--project", tenant_a.project.slug, "--fix")
    assert f"[fixed] mismatch dispute {dispute.id} dispute_status: local='' stripe='{dispute.status}'" in out
    payment = Payment.objects.get(pk=created["id"])
    assert (payment.status, payment.dispute_status) == ("disputed", dispute.status)


# --- 2. --fetch-missing stores Stripe's JSON as sent ---------------------------------------------------------


def test_fetch_missing_stores_and_applies_subscription_invoice_intent_and_charge_events(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, captured
):
    since = timezone.now() - timedelta(minutes=1)
    created = _subscribe(api, tenant_a, stripe_emulator)
    invoice_id = stripe_sdk().v1.checkout.sessions.retrieve(created["stripe_session_id"]).invoice
    intent = stripe_sdk().v1.invoice_payments.list({"invoice": invoice_id}).data[0].payment.payment_intent
    stripe_sdk().v1.refunds.create({"payment_intent": intent, "amount": 500})
    lost = captured.collect()  # Tollgate was down: nothing arrived
    assert {
        "customer.subscription.created",
        "invoice.paid",
        "payment_intent.succeeded",
        "charge.refunded",
    } <= set(_types(lost))

    out = io.StringIO()
    call_command(
        "replay_webhooks", "--fetch-missing", "--since", since.isoformat(), "--status", "any", stdout=out
    )
    fetched = StripeEvent.objects.count()
    ignored = StripeEvent.objects.filter(status="ignored").count()
    assert f": 0 received before; {fetched - ignored} missing of types Tollgate handles," in out.getvalue()
    assert f"; {ignored} missing of types it does not handle, stored as ignored" in out.getvalue()
    assert fetched > len(lost)  # /v1/events has every type, not only those the endpoint receives
    assert StripeEvent.objects.get(type="charge.succeeded").status == "ignored"
    stored = StripeEvent.objects.get(type="invoice.paid")
    line = stored.payload["data"]["object"]["lines"]["data"][0]
    assert line["pricing"]["unit_amount_decimal"] == "3000"  # a string, as Stripe sends it
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed", "ignored"}
    stripe_subscription = stripe_sdk().v1.subscriptions.list({"limit": 1}).data[0]
    subscription = Subscription.objects.get()
    assert (subscription.status, subscription.stripe_subscription_id) == ("active", stripe_subscription.id)
    payment = Payment.objects.get(pk=created["payment"])
    assert (
        payment.status,
        payment.amount_refunded,
        payment.stripe_invoice_id,
        payment.stripe_payment_intent_id,
    ) == (
        "partially_refunded",
        500,
        invoice_id,
        intent,
    )
    assert Invoice.objects.get(stripe_invoice_id=invoice_id).subscription_id == subscription.pk


# --- 3. a subscription's first payment is linked to its intent ------------------------------------------------


def test_first_payment_is_linked_to_its_intent_when_invoice_paid_is_lost_and_can_be_refunded(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, captured
):
    created = _subscribe(api, tenant_a, stripe_emulator)
    events = captured.collect()
    captured.deliver([e for e in events if e["type"] not in ("invoice.paid", "invoice.payment_succeeded")])
    invoice_id = stripe_sdk().v1.checkout.sessions.retrieve(created["stripe_session_id"]).invoice
    intent = stripe_sdk().v1.invoice_payments.list({"invoice": invoice_id}).data[0].payment.payment_intent
    payment = Payment.objects.get(pk=created["payment"])
    assert (payment.status, payment.stripe_invoice_id, payment.stripe_payment_intent_id) == (
        "succeeded",
        invoice_id,
        intent,
    )
    refunded = api.post(f"/api/v1/payments/{payment.pk}/refund", {"amount": 1000}, key=tenant_a.key)
    assert refunded.status_code == 200, refunded.json()
    assert refunded.json()["amount_refunded"] == 1000


def test_reconcile_links_the_first_payment_when_every_linking_event_was_lost(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, captured
):
    created = _subscribe(api, tenant_a, stripe_emulator)
    events = captured.collect()
    captured.deliver(
        [
            e
            for e in events
            if e["type"] not in ("invoice.paid", "invoice.payment_succeeded", "invoice_payment.paid")
        ]
    )
    assert Payment.objects.get(pk=created["payment"]).stripe_payment_intent_id == ""
    _reconcile("--project", tenant_a.project.slug, "--fix")
    invoice_id = Payment.objects.get(pk=created["payment"]).stripe_invoice_id
    intent = stripe_sdk().v1.invoice_payments.list({"invoice": invoice_id}).data[0].payment.payment_intent
    assert Payment.objects.get(pk=created["payment"]).stripe_payment_intent_id == intent
    assert Invoice.objects.get(stripe_invoice_id=invoice_id).status == "paid"


# --- 4. a failed renewal attempt is mirrored by reconcile ----------------------------------------------------


def test_reconcile_mirrors_a_failed_renewal_whose_event_was_lost(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, captured
):
    _subscribe(api, tenant_a, stripe_emulator)
    captured.deliver(captured.collect())
    subscription = Subscription.objects.get()
    stripe_customer = stripe_sdk().v1.subscriptions.retrieve(subscription.stripe_subscription_id).customer
    failing = stripe_sdk().v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", {"customer": stripe_customer}
    )
    stripe_sdk().v1.customers.update(
        stripe_customer, {"invoice_settings": {"default_payment_method": failing.id}}
    )
    stripe_sdk().v1.subscriptions.update(
        subscription.stripe_subscription_id, {"default_payment_method": failing.id}
    )
    stripe_emulator.advance(31 * 86400)
    lost = captured.collect()
    assert "invoice.payment_failed" in _types(lost)

    out = _reconcile("--project", tenant_a.project.slug, "--fix")
    renewal = (
        stripe_sdk()
        .v1.invoices.list({"subscription": subscription.stripe_subscription_id, "status": "open"})
        .data[0]
    )
    attempt = stripe_sdk().v1.invoice_payments.list({"invoice": renewal.id}).data[0]
    payment = Payment.objects.get(stripe_invoice_id=renewal.id)
    assert (payment.status, payment.source, payment.amount, payment.stripe_payment_intent_id) == (
        "requires_payment_method",
        "invoice",
        renewal.amount_due,
        attempt.payment.payment_intent,
    )
    assert f"[fixed] missing_locally payment {renewal.id}" in out
    assert Subscription.objects.get().status == "past_due"
    assert Event.objects.filter(type="invoice.payment_failed").count() == 1


# --- 5. same-second events never regress state -----------------------------------------------------------------


def test_same_second_renewal_events_never_regress_and_the_payment_follows_stripe(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, captured
):
    _subscribe(api, tenant_a, stripe_emulator)
    captured.deliver(captured.collect())
    before = len(captured.deliveries)
    # The renewal happens within one second of Stripe's clock, as under a test clock's advance: the wall clock
    # stands still while it runs, so a second boundary in the middle cannot split its events.
    with time_machine.travel(timezone.now(), tick=False):
        stripe_emulator.advance(31 * 86400)
    renewal = captured.collect()[before:]
    by_type = {e["type"]: e for e in renewal if e["type"].startswith("invoice.")}
    assert by_type["invoice.created"]["created"] == by_type["invoice.finalized"]["created"]  # one second

    # invoice.paid is lost; the draft arrives after the finalized invoice of the same second.
    captured.deliver([by_type["invoice.finalized"], by_type["invoice.created"]])
    stripe_invoice = stripe_sdk().v1.invoices.retrieve(by_type["invoice.created"]["data"]["object"]["id"])
    invoice = Invoice.objects.get(stripe_invoice_id=stripe_invoice.id)
    assert (invoice.status, invoice.number) == ("open", stripe_invoice.number)

    captured.deliver([by_type["invoice.payment_succeeded"]])
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", stripe_invoice.amount_paid)
    payment = Payment.objects.get(stripe_invoice_id=stripe_invoice.id)
    intent = (
        stripe_sdk().v1.invoice_payments.list({"invoice": stripe_invoice.id}).data[0].payment.payment_intent
    )
    assert (payment.status, payment.amount, payment.stripe_payment_intent_id) == ("succeeded", 3000, intent)
    assert Event.objects.filter(type="payment.succeeded", data__object__id=payment.pk).count() == 1
    assert Event.objects.filter(type="invoice.paid", data__object__id=invoice.pk).count() == 1

    captured.deliver(list(reversed(renewal)) + renewal)  # everything, twice, any order: nothing changes
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", stripe_invoice.amount_paid)
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"
    assert Event.objects.filter(type="payment.succeeded", data__object__id=payment.pk).count() == 1
    assert Event.objects.filter(type="invoice.paid", data__object__id=invoice.pk).count() == 1


# --- 6. reconcile judges by Stripe's clock and checks its repairs ----------------------------------------------


def test_reconcile_under_a_stripe_clock_ahead_of_ours_is_not_undone_by_older_events(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, captured
):
    _subscribe(api, tenant_a, stripe_emulator)
    captured.deliver(captured.collect())
    subscription = Subscription.objects.get()
    stripe_emulator.advance(40 * 86400)  # Stripe's clock is now 40 days ahead of ours (a test clock)
    stripe_sdk().v1.subscriptions.update(subscription.stripe_subscription_id, {"cancel_at_period_end": True})
    late = captured.collect()

    _reconcile("--project", tenant_a.project.slug, "--fix")
    fixed = Subscription.objects.get()
    assert fixed.cancel_at_period_end is True
    # The renewal's events, older than the state reconcile read, arrive afterwards: they change nothing.
    captured.deliver([e for e in late if e["type"].startswith("customer.subscription.")][:1])
    assert Subscription.objects.get().cancel_at_period_end is True
    assert Drift.objects.filter(status__in=("open", "failed")).count() == 0
    assert _reconcile("--project", tenant_a.project.slug).endswith("0 drift, 0 fixed.\n")


def test_a_repair_that_does_not_take_is_recorded_failed_with_the_difference(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, captured
):
    _subscribe(api, tenant_a, stripe_emulator)
    captured.deliver(captured.collect())
    subscription = Subscription.objects.get()
    # A price created at Stripe behind Tollgate's back: the mirror cannot follow it (not in the catalog).
    foreign = stripe_sdk().v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 999,
            "recurring": {"interval": "month"},
            "product_data": {"name": "X"},
        }
    )
    item = stripe_sdk().v1.subscriptions.retrieve(subscription.stripe_subscription_id)["items"].data[0]
    stripe_sdk().v1.subscriptions.update(
        subscription.stripe_subscription_id,
        {"items": [{"id": item.id, "price": foreign.id}], "proration_behavior": "none"},
    )
    with pytest.raises(Exception, match="remain unfixed"):
        _reconcile("--project", tenant_a.project.slug, "--fix")
    drift = Drift.objects.get(field="stripe_price_id")
    assert (drift.status, drift.stripe_value) == ("failed", foreign.id)
    assert foreign.id in drift.detail


# --- 7. the first invoice is linked to its subscription when the subscription arrives last -------------------


def test_first_invoice_is_linked_when_the_subscription_event_arrives_after_it(
    api, tenant_a, catalog, stripe_emulator, captured
):
    created = _subscribe(api, tenant_a, stripe_emulator)
    events = captured.collect()
    subscription_events = [e for e in events if e["type"].startswith("customer.subscription.")]
    captured.deliver([e for e in events if e not in subscription_events] + subscription_events)
    invoice = Invoice.objects.get()
    subscription = Subscription.objects.get()
    assert invoice.subscription_id == subscription.pk
    assert (
        Payment.objects.get(pk=created["payment"]).stripe_subscription_id
        == subscription.stripe_subscription_id
    )
    detail = api.get(f"/api/v1/invoices/{invoice.pk}", key=tenant_a.key).json()
    assert detail["subscription"] == subscription.pk
