"""Before an interval switch or a cancel now, the customer's pending usage reaches Stripe's meter (#49 point 2):
all of it, however many batches it takes, or the request is refused with a retryable 503 `usage_not_reported`
and nothing is sent to Stripe for it. Let through, the leftovers would reach Stripe stamped in a period already
invoiced: billed by nobody. The 1,250 events wait on a broker whose worker is stopped (queued, never run); a
failing meter is Stripe's own (the meter deactivated at the emulator: Stripe refuses its events)."""

from datetime import timedelta

import pytest

from billing.models import Invoice, Subscription
from billing.services import meter_reports
from catalog.models import Feature
from entitlements.models import UsageEvent
from tests.billing.test_interval_change import CHANGE, T0, _at, _everything, _lines, _subscribe_with_calls
from tests.billing.test_interval_change import allowance as allowance
from tests.billing.test_interval_change import clock as clock
from tests.billing.test_interval_change import metered as metered
from tests.billing.test_interval_change import yearly as yearly
from tests.catalog import price_create, product_create
from tests.entitlements.factories import FeatureFactory, ProductFeatureFactory
from tests.fairness.conftest import broker as broker  # the fixture, taken once subscribed

pytestmark = pytest.mark.django_db

SWITCH = {"items": [{"price": "pro-yearly"}, {"price": "pro-calls-yearly"}]}


def _record_batch(api, tenant, start: int, count: int) -> None:
    events = [
        {"id": f"u-{index}", "customer": "user-1", "feature": "api_calls", "quantity": 1}
        for index in range(start, start + count)
    ]
    response = api.post("/api/v1/usage/batch", {"events": events}, key=tenant.key)
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == count


def _usage_lines(invoice: Invoice, stripe_price_id: str):
    return [line[:5] for line in _lines(invoice) if line[2] == stripe_price_id]


def test_more_than_a_batch_of_pending_usage_is_all_billed_on_the_switch_invoice(
    request,
    monkeypatch,
    api,
    tenant_a,
    catalog,
    yearly,
    metered,
    allowance,
    clock,
    stripe_sdk,
    stripe_emulator,
    stripe_webhooks,
):
    """1,250 calls wait to be reported (more than one report's batch of 1,000): the switch reports them all
    first, and its invoice bills the 1,250 at 2 a call. The wait is raised from its few seconds: how fast a
    shared test machine sends 1,250 events is not what this checks."""
    monkeypatch.setattr(meter_reports, "METER_SETTLE_SECONDS", 120.0)
    subscription = _subscribe_with_calls(api, tenant_a, stripe_emulator, stripe_webhooks)
    queued = request.getfixturevalue("broker")  # the worker stops: the reports are queued, not run
    clock.move_to(_at(CHANGE - 10))
    _record_batch(api, tenant_a, 0, 1000)
    _record_batch(api, tenant_a, 1000, 250)
    assert UsageEvent.objects.filter(meter_status="pending").count() == 1250
    clock.move_to(_at(CHANGE))

    response = api.patch(f"/api/v1/subscriptions/{subscription.pk}", SWITCH, key=tenant_a.key)

    assert response.status_code == 200, response.content
    queued.take()
    invoices = stripe_sdk().v1.invoices.list({"subscription": subscription.stripe_subscription_id})
    change = next(invoice for invoice in invoices.data if invoice.billing_reason == "subscription_update")
    assert [
        (line.amount, line.quantity, line.period.start, line.period.end)
        for line in change.lines.data
        if line.pricing.price_details.price == metered[0].stripe_price_id
    ] == [(2500, 1250, T0, CHANGE)]
    assert UsageEvent.objects.filter(meter_status="reported").count() == 1250


def _fail_a_report(api, tenant, stripe_sdk, allowance) -> None:
    """40 calls whose report Stripe refuses: the meter is deactivated at Stripe."""
    allowance.refresh_from_db()
    stripe_sdk().v1.billing.meters.deactivate(allowance.stripe_meter_id)
    usage = {"id": "u-1", "customer": "user-1", "feature": "api_calls", "quantity": 40}
    assert api.post("/api/v1/usage", usage, key=tenant.key).status_code == 201
    assert UsageEvent.objects.values_list("meter_status", "meter_attempts").get() == ("pending", 1)


def _refused(response) -> None:
    assert response.status_code == 503, response.content
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("payment_provider_error", "usage_not_reported")
    assert error["message"].endswith("retry shortly.")


def test_a_failing_meter_refuses_the_switch_and_the_retry_bills_all_the_usage(
    api, tenant_a, catalog, yearly, metered, allowance, clock, stripe_sdk, stripe_emulator, stripe_webhooks
):
    subscription = _subscribe_with_calls(api, tenant_a, stripe_emulator, stripe_webhooks)
    clock.move_to(_at(CHANGE - 10))
    _fail_a_report(api, tenant_a, stripe_sdk, allowance)
    clock.move_to(_at(CHANGE))
    before = _everything(stripe_sdk, subscription)

    refused = api.patch(f"/api/v1/subscriptions/{subscription.pk}", SWITCH, key=tenant_a.key)

    _refused(refused)
    assert _everything(stripe_sdk, subscription) == before
    assert UsageEvent.objects.values_list("meter_status", "meter_attempts").get() == ("pending", 2)
    stripe_sdk().v1.billing.meters.reactivate(allowance.stripe_meter_id)  # Stripe's meter recovers
    clock.shift(timedelta(seconds=5))
    switched = CHANGE + 5

    response = api.patch(f"/api/v1/subscriptions/{subscription.pk}", SWITCH, key=tenant_a.key)

    assert response.status_code == 200, response.content
    stripe_webhooks.deliver()
    change = Invoice.objects.get(billing_reason="subscription_update")
    assert _usage_lines(change, metered[0].stripe_price_id) == [
        (80, False, metered[0].stripe_price_id, T0, switched)
    ]
    assert UsageEvent.objects.values_list("meter_status", "meter_attempts").get() == ("reported", 3)


def test_a_failing_meter_refuses_a_cancel_now_and_the_retry_bills_all_the_usage(
    api, tenant_a, catalog, metered, allowance, clock, stripe_sdk, stripe_emulator, stripe_webhooks
):
    subscription = _subscribe_with_calls(api, tenant_a, stripe_emulator, stripe_webhooks)
    clock.move_to(_at(CHANGE - 10))
    _fail_a_report(api, tenant_a, stripe_sdk, allowance)
    clock.move_to(_at(CHANGE))
    before = _everything(stripe_sdk, subscription)
    path = f"/api/v1/subscriptions/{subscription.pk}/cancel"

    refused = api.post(path, {"at_period_end": False}, key=tenant_a.key)

    _refused(refused)
    assert _everything(stripe_sdk, subscription) == before
    live = stripe_sdk().v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    assert (live.status, live.ended_at) == ("active", None)
    stripe_sdk().v1.billing.meters.reactivate(allowance.stripe_meter_id)
    clock.shift(timedelta(seconds=5))

    response = api.post(path, {"at_period_end": False}, key=tenant_a.key)

    assert response.status_code == 200, response.content
    stripe_webhooks.deliver()
    assert Subscription.objects.get().status == "canceled"
    final = Invoice.objects.exclude(billing_reason="subscription_create").get()
    assert _usage_lines(final, metered[0].stripe_price_id) == [
        (80, False, metered[0].stripe_price_id, T0, CHANGE + 5)
    ]
    assert UsageEvent.objects.values_list("meter_status", "meter_attempts").get() == ("reported", 3)


def test_a_second_subscription_in_trial_leaves_the_estimate_of_a_feature_the_first_bills(
    api, tenant_a, catalog, metered, allowance, clock, stripe_emulator, stripe_webhooks
):
    """`api_calls` is billed by the paid subscription; a second one, still in its 30-day trial, bills another
    meter (`storage_gb`). Its trial says nothing of `api_calls`: 40 calls are estimated at 2 a call (Stripe bills
    them at the renewal), where the trial's own usage is estimated at nothing."""
    from tests.e2e.test_subscription_lifecycle import _complete

    _subscribe_with_calls(api, tenant_a, stripe_emulator, stripe_webhooks)
    storage = product_create(tenant_a.project, "storage", "Storage")
    gigabytes = FeatureFactory(project=tenant_a.project, key="storage_gb", type=Feature.Type.METERED)
    ProductFeatureFactory(product=storage, feature=gigabytes, value=100)
    price_create(storage, "storage-monthly", 500, interval="month")
    price_create(storage, "storage-gb-monthly", 3, interval="month", usage_type="metered", meter="storage_gb")
    clock.move_to(_at(CHANGE))
    created = api.post(
        "/api/v1/checkout/subscription",
        {
            "customer": "user-1",
            "items": [{"price": "storage-monthly"}, {"price": "storage-gb-monthly"}],
            "trial_days": 30,
            "success_url": "https://app.example.com/ok",
            "cancel_url": "https://app.example.com/ok",
        },
        key=tenant_a.key,
    )
    assert created.status_code == 201, created.content
    _complete(stripe_emulator, created.json()["stripe_session_id"])
    stripe_webhooks.deliver()
    assert sorted(Subscription.objects.values_list("status", flat=True)) == ["active", "trialing"]
    for event_id, feature, quantity in (("u-calls", "api_calls", 40), ("u-gb", "storage_gb", 7)):
        body = {"id": event_id, "customer": "user-1", "feature": feature, "quantity": quantity}
        assert api.post("/api/v1/usage", body, key=tenant_a.key).status_code == 201

    calls = api.get("/api/v1/usage?customer=user-1&feature=api_calls", key=tenant_a.key).json()
    gb = api.get("/api/v1/usage?customer=user-1&feature=storage_gb", key=tenant_a.key).json()

    assert (calls["quantity"], calls["amount_due_estimate"]) == (40, 80)
    assert (gb["quantity"], gb["amount_due_estimate"]) == (7, 0)
