"""Usage of a feature sold with a metered price, marked reportable by entitlements, is reported to Stripe's
billing meter (the emulator) by billing's batched task: our event id is Stripe's `identifier`, so a re-send is harmless; failures are retried from the
database; which events were reported is visible on the event."""

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from billing import tasks
from billing.models import Subscription, SubscriptionItem
from billing.services import meter_reports
from billing.services.meter_corrections import claim_seconds
from billing.services.meter_reports import _Pacer, meter_events_report
from catalog.models import Feature, Price
from customers.services.customers import customer_ensure_stripe
from entitlements.models import UsageEvent
from stripe_gateway.client import call_seconds_at_most
from tests.billing.payment_factories import SubscriptionFactory
from tests.catalog import price_create, product_create
from tests.entitlements.helpers import customer, feature, hand_subscription


@pytest.fixture
def metered(tenant_a, stripe_emulator):
    calls = feature(tenant_a.project, "api_calls", Feature.Type.METERED)
    usage_product = product_create(tenant_a.project, "usage", "Usage")
    price_create(usage_product, "calls", 2, interval="month", usage_type="metered", meter="api_calls")
    calls.refresh_from_db()
    assert calls.stripe_meter_event_name == "tg_alpha_api_calls"
    return calls


def billed(cust, status=Subscription.Status.ACTIVE):
    """The customer with a subscription holding the metered `calls` item (as the mirror stores it): only such
    customers' usage is reported to the meter."""
    price = Price.objects.get(project=cust.project, key="calls")
    subscription = SubscriptionFactory(project=cust.project, customer=cust, price=price, status=status)
    SubscriptionItem.objects.create(
        project=cust.project,
        subscription=subscription,
        price=price,
        product=price.product,
        quantity=None,
        usage_type=Price.UsageType.METERED,
        stripe_item_id=f"si_for_{subscription.pk}",
    )
    hand_subscription(subscription)
    return cust


def _summary(stripe_sdk, feature, stripe_customer):
    now = int(time.time())
    summaries = stripe_sdk().v1.billing.meters.event_summaries.list(
        feature.stripe_meter_id,
        {"customer": stripe_customer, "start_time": now - 86400, "end_time": now + 86400},
    )
    return sum(float(s.aggregated_value) for s in summaries.data)


def test_usage_is_reported_to_the_stripe_meter_once(api, tenant_a, metered, stripe_sdk):
    cust = billed(customer(tenant_a.project, "u1"))
    stripe_customer = customer_ensure_stripe(customer=cust)
    events = [{"id": f"e{i}", "customer": "u1", "feature": "api_calls", "quantity": i + 1} for i in range(3)]
    response = api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key)
    assert response.json() == {"accepted": 3, "duplicates": 0}
    stored = list(UsageEvent.objects.order_by("event_id"))
    assert {e.meter_status for e in stored} == {"reported"}
    assert all(e.meter_reported_at for e in stored)
    assert _summary(stripe_sdk, metered, stripe_customer) == 6
    shown = api.post("/api/v1/usage", events[0], key=tenant_a.key).json()
    assert shown["stripe_meter"]["status"] == "reported"
    # A re-send (a worker that died after Stripe answered) is refused by Stripe as a duplicate: still reported.
    UsageEvent.objects.filter(event_id="e0").update(
        meter_status="pending", meter_next_attempt_at=timezone.now()
    )
    assert meter_events_report(project_id=tenant_a.project.pk) == 1
    assert UsageEvent.objects.get(event_id="e0").meter_status == "reported"
    assert _summary(stripe_sdk, metered, stripe_customer) == 6


def test_failures_are_retried_with_backoff_from_the_database(api, tenant_a, metered, stripe_sdk):
    cust = billed(customer(tenant_a.project, "u1"))
    stripe_customer = customer_ensure_stripe(customer=cust)
    sdk = stripe_sdk()
    sdk.v1.billing.meters.deactivate(metered.stripe_meter_id)
    api.post(
        "/api/v1/usage",
        {"id": "e1", "customer": "u1", "feature": "api_calls", "quantity": 4},
        key=tenant_a.key,
    )
    event = UsageEvent.objects.get()
    assert (event.meter_status, event.meter_attempts) == ("pending", 1)
    assert "No active meter" in event.meter_error
    assert event.meter_next_attempt_at > timezone.now()
    assert tasks.usage_report_sweep() == 0  # not due yet
    sdk.v1.billing.meters.reactivate(metered.stripe_meter_id)
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        assert tasks.usage_report_sweep() == 1
    event.refresh_from_db()
    assert (event.meter_status, event.meter_attempts, event.meter_error) == ("reported", 2, "")
    assert _summary(stripe_sdk, metered, stripe_customer) == 4


def test_a_batch_sends_nothing_once_its_time_is_over_and_leaves_the_rest_due(
    api, tenant_a, metered, stripe_sdk, settings, monkeypatch
):
    """A batch's events are claimed for its time plus the longest one Stripe call may take; a send started
    later could outlast the claim (a correction waiting it out would cancel before the event reached the meter),
    so the batch stops sending when its time is over and the events it did not reach are due again at once."""
    cust = billed(customer(tenant_a.project, "u1"))
    stripe_customer = customer_ensure_stripe(customer=cust)
    sdk = stripe_sdk()
    sdk.v1.billing.meters.deactivate(metered.stripe_meter_id)
    events = [{"id": f"e{i}", "customer": "u1", "feature": "api_calls", "quantity": i + 1} for i in range(6)]
    assert api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key).json()["accepted"] == 6
    sdk.v1.billing.meters.reactivate(metered.stripe_meter_id)
    due = timezone.now()
    for i in range(6):  # due in their order: the longest due is sent first
        UsageEvent.objects.filter(event_id=f"e{i}").update(
            meter_next_attempt_at=due + timedelta(microseconds=i)
        )
    settings.STRIPE_METER_EVENTS_PER_SECOND = 2  # sends at 0, 0.5 and 1.0 s
    monkeypatch.setattr(meter_reports, "METER_CLAIM_SECONDS", 1.2)

    started = timezone.now()
    assert meter_events_report(project_id=tenant_a.project.pk) == 6
    rows = {e.event_id: e for e in UsageEvent.objects.all()}
    assert sorted(e for e, row in rows.items() if row.meter_status == "reported") == ["e0", "e1", "e2"]
    assert _summary(stripe_sdk, metered, stripe_customer) == 1 + 2 + 3
    for left in ("e3", "e4", "e5"):  # never sent, due again now, their tries unchanged
        row = rows[left]
        assert (row.meter_status, row.meter_attempts) == ("pending", 1)
        assert started <= row.meter_next_attempt_at <= timezone.now()

    assert meter_events_report(project_id=tenant_a.project.pk) == 3
    assert set(UsageEvent.objects.values_list("meter_status", flat=True)) == {"reported"}
    assert _summary(stripe_sdk, metered, stripe_customer) == 21


def test_a_claim_outlasts_the_stripe_calls_it_covers(settings):
    """One Stripe call, as configured: 3 attempts (2 retries), each a connect and a read of up to 20 s, and the
    SDK's pauses (up to 5 s) between them. A correction with two earlier ones writes 4 times (3 cancels, 1 send)."""
    settings.STRIPE_TIMEOUT_SECONDS = 20.0
    settings.STRIPE_MAX_NETWORK_RETRIES = 2
    assert call_seconds_at_most() == 3 * 40 + 2 * 5
    assert claim_seconds(writes=4) == 4 * 130 + 30
    assert meter_reports.meter_claim_seconds() == 120 + 130 + 30


def test_usage_of_a_customer_without_a_stripe_customer_is_skipped(api, tenant_a, metered):
    api.post(
        "/api/v1/usage",
        {"id": "e1", "customer": "free-user", "feature": "api_calls", "quantity": 1},
        key=tenant_a.key,
    )
    event = UsageEvent.objects.get()
    assert event.meter_status == "skipped"


@pytest.mark.parametrize("subscription", [None, Subscription.Status.CANCELED])
def test_usage_of_a_customer_without_a_live_metered_item_is_skipped(
    api, tenant_a, metered, stripe_sdk, subscription
):
    """Reported, it would bill nobody: no subscription, or only an ended one, carries the metered price."""
    cust = customer(tenant_a.project, "u1")
    if subscription is not None:
        billed(cust, status=subscription)
    stripe_customer = customer_ensure_stripe(customer=cust)
    api.post(
        "/api/v1/usage",
        {"id": "e1", "customer": "u1", "feature": "api_calls", "quantity": 4},
        key=tenant_a.key,
    )
    event = UsageEvent.objects.get()
    assert (event.meter_status, event.meter_error) == (
        "skipped",
        "The customer has no live subscription item on a metered price of this meter.",
    )
    assert _summary(stripe_sdk, metered, stripe_customer) == 0


def test_features_without_a_meter_are_not_reported(api, tenant_a):
    feature(tenant_a.project, "exports", Feature.Type.METERED)
    api.post(
        "/api/v1/usage", {"id": "e1", "customer": "u1", "feature": "exports", "quantity": 1}, key=tenant_a.key
    )
    assert UsageEvent.objects.get().meter_status == ""


def test_the_pacer_keeps_under_the_rate():
    pacer = _Pacer(1000)
    started = time.monotonic()
    for _ in range(101):
        pacer.wait()
    assert time.monotonic() - started >= 0.099


def test_consume_of_a_metered_feature_is_reported_too(api, tenant_a, metered, stripe_sdk):
    cust = billed(customer(tenant_a.project, "u1"))
    stripe_customer = customer_ensure_stripe(customer=cust)
    grant = {"customer": "u1", "feature": "api_calls", "value": 10, "reason": "test"}
    assert api.post("/api/v1/entitlements/grants", grant, key=tenant_a.key).status_code == 201
    body = {"id": "c1", "customer": "u1", "feature": "api_calls", "quantity": 3}
    assert api.post("/api/v1/entitlements/consume", body, key=tenant_a.key).json()["allowed"] is True
    assert UsageEvent.objects.get().meter_status == "reported"
    assert _summary(stripe_sdk, metered, stripe_customer) == 3


# --- usage recorded before Tollgate mirrored the metered item ----------------------------------------------


def _with_card(api, tenant, sdk, external_id="user-1"):
    api.post("/api/v1/customers", {"external_id": external_id}, key=tenant.key)
    from customers.models import Customer

    stripe_customer = customer_ensure_stripe(customer=Customer.objects.get(external_id=external_id))
    pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer}).id
    sdk.v1.customers.update(stripe_customer, {"invoice_settings": {"default_payment_method": pm}})
    return stripe_customer


def _usage(api, tenant, event_id, quantity, **extra):
    body = {"id": event_id, "customer": "user-1", "feature": "api_calls", "quantity": quantity, **extra}
    response = api.post("/api/v1/usage", body, key=tenant.key)
    assert response.status_code == 201, response.json()


def _renewal_usage_lines(stripe_emulator, sdk, stripe_subscription_id, stripe_webhooks):
    from billing.models import Invoice

    live = sdk.v1.subscriptions.retrieve(stripe_subscription_id)
    stripe_emulator.advance(live["items"].data[0].current_period_end - stripe_emulator.clock.now() + 60)
    stripe_webhooks.deliver()
    renewal = Invoice.objects.get(billing_reason="subscription_cycle")
    calls = Price.objects.get(key="calls").stripe_price_id
    return [(line["quantity"], line["amount"]) for line in renewal.lines if line["stripe_price_id"] == calls]


def test_usage_recorded_before_the_subscription_was_mirrored_is_billed_at_renewal(
    api, tenant_a, metered, stripe_emulator, stripe_sdk, stripe_webhooks
):
    """The subscription with the metered item starts at Stripe; before its events reach Tollgate the customer
    uses 40 calls (skipped: Tollgate knows no item that bills them). The mirror takes them back and reports
    them; the renewal invoice bills exactly 40 × 0.02. Usage of another meter-less customer stays skipped."""
    sdk = stripe_sdk()
    stripe_customer = _with_card(api, tenant_a, sdk)
    calls = Price.objects.get(key="calls")
    created = sdk.v1.subscriptions.create(
        {"customer": stripe_customer, "items": [{"price": calls.stripe_price_id}]}
    )
    _usage(api, tenant_a, "early-1", 30)
    _usage(api, tenant_a, "early-2", 10)
    _usage(api, tenant_a, "other-1", 5, customer="user-2")
    assert dict(UsageEvent.objects.values_list("event_id", "meter_status")) == {
        "early-1": "skipped",
        "early-2": "skipped",
        "other-1": "skipped",
    }

    stripe_webhooks.deliver()

    assert dict(UsageEvent.objects.values_list("event_id", "meter_status")) == {
        "early-1": "reported",
        "early-2": "reported",
        "other-1": "skipped",
    }
    assert _summary(stripe_sdk, metered, stripe_customer) == 40
    usage = api.get("/api/v1/usage?customer=user-1&feature=api_calls", key=tenant_a.key).json()
    assert (usage["quantity"], usage["billed_quantity"], usage["pending_quantity"]) == (40, 40, 0)
    assert _renewal_usage_lines(stripe_emulator, sdk, created.id, stripe_webhooks) == [(40, 80)]


def test_usage_since_a_metered_item_was_added_is_billed_and_usage_before_it_is_not(
    api, tenant_a, metered, stripe_emulator, stripe_sdk, stripe_webhooks
):
    """A base subscription is mirrored; a week later the metered item is added at Stripe, and 7 calls are
    recorded before that reaches Tollgate: they are reported and billed. Stripe (`billing_mode` classic) bills a
    metered item added within the period only for the usage from its addition on, so the 3 calls recorded earlier
    in the period stay skipped (reported, they would bill nobody), as do 100 calls of the day before the period
    began."""
    sdk = stripe_sdk()
    stripe_customer = _with_card(api, tenant_a, sdk)
    base = price_create(
        product_create(tenant_a.project, "base", "Base"), "base-monthly", 1000, interval="month"
    )
    _usage(api, tenant_a, "older", 100)
    with time_machine.travel(timezone.now() + timedelta(days=1), tick=False) as clock:
        created = sdk.v1.subscriptions.create(
            {"customer": stripe_customer, "items": [{"price": base.stripe_price_id}]}
        )
        stripe_webhooks.deliver()
        _usage(api, tenant_a, "in-period", 3)
        clock.shift(timedelta(days=7))
        calls = Price.objects.get(key="calls")
        sdk.v1.subscriptions.update(
            created.id, {"items": [{"price": calls.stripe_price_id}], "proration_behavior": "none"}
        )
        _usage(api, tenant_a, "late", 7)
        assert set(UsageEvent.objects.values_list("meter_status", flat=True)) == {"skipped"}

        stripe_webhooks.deliver()

        assert dict(UsageEvent.objects.values_list("event_id", "meter_status")) == {
            "older": "skipped",
            "in-period": "skipped",
            "late": "reported",
        }
        assert _renewal_usage_lines(stripe_emulator, sdk, created.id, stripe_webhooks) == [(7, 14)]


def test_the_report_task_is_registered_in_a_process_that_never_imported_billing_tasks():
    """Entitlements queues the report by its task name; an eager process (`make demo`, a web process) runs it only
    if the task is registered there. A fresh interpreter that only set Django up must know it."""
    code = (
        "import django; django.setup(); from celery import current_app; "
        "print(sorted(n for n in current_app.tasks if n.startswith('entitlements.tasks.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
    ).stdout
    assert (
        out.strip()
        == "['entitlements.tasks.usage_report_sweep', 'entitlements.tasks.usage_report_to_stripe']"
    )


def test_the_meter_bills_only_what_a_credits_waterfall_did_not_pay(api, tenant_a, metered, stripe_sdk):
    """Use past the allowance is paid with credits before it is overage: Stripe's meter is told the rest only, and
    a use credits paid whole is not sent at all."""
    from tests.entitlements.helpers import product

    feature(tenant_a.project, "ai_credits", Feature.Type.CREDITS)
    value = {"limit": 10, "overage": "allowed", "credits": {"feature": "ai_credits"}}
    product(tenant_a.project, "free", {metered: value})
    tenant_a.project.default_product = "free"
    tenant_a.project.save()
    cust = billed(customer(tenant_a.project, "u1"))
    stripe_customer = customer_ensure_stripe(customer=cust)
    grant = {"customer": "u1", "feature": "ai_credits", "value": 4, "reason": "promo"}
    assert api.post("/api/v1/entitlements/grants", grant, key=tenant_a.key).status_code == 201
    for event_id, quantity in (("c1", 12), ("c2", 2), ("c3", 3)):  # 10 + 2 paid; 2 paid; 3 overage
        body = {"id": event_id, "customer": "u1", "feature": "api_calls", "quantity": quantity}
        assert api.post("/api/v1/entitlements/consume", body, key=tenant_a.key).json()["allowed"] is True
    stored = {e.event_id: (e.covered, e.meter_status, e.meter_error) for e in UsageEvent.objects.all()}
    assert stored == {
        "c1": (2, "reported", ""),
        "c2": (2, "skipped", "Paid from credits: nothing to bill."),
        "c3": (0, "reported", ""),
    }
    assert _summary(stripe_sdk, metered, stripe_customer) == 13
