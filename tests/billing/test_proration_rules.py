"""Proration rules per project and direction, end to end through Tollgate's HTTP API and the emulator (checked
through the official SDK): a downgrade the project defers to the period's end is held by a Stripe subscription
schedule (`from_subscription`, then a second phase), shown as the subscription's `pending_change` and previewed
as such; a test clock carried through the whole period moves the subscription to it at the period's end, and
only then do the mirror, the entitlements and the tenant events change. A second change replaces the pending
one, an immediate change or a cancellation drops it, and the defaults keep today's behaviour."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from billing.models import Subscription
from catalog.models import Feature
from core.models import AuditLogEntry
from events.models import Event
from stripe_inbox.models import StripeEvent
from tests.catalog import price_create, product_create
from tests.entitlements.factories import FeatureFactory, ProductFeatureFactory

pytestmark = pytest.mark.django_db


def _z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ts(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


@pytest.fixture
def basic(tenant_a, catalog):
    """A cheaper product: 1000 a month against Pro's 3000; Pro gives 1000 API calls a period, Basic 100."""
    product = product_create(tenant_a.project, "basic", "Basic")
    price = price_create(product, "basic-monthly", 1000, interval="month")
    feature = FeatureFactory(project=tenant_a.project, key="api_calls", type=Feature.Type.METERED)
    ProductFeatureFactory(product=catalog.pro, feature=feature, value=1000)
    ProductFeatureFactory(product=product, feature=feature, value=100)
    return price


def _rules(api, platform_key, tenant, **rules):
    response = api.patch(f"/api/v1/projects/{tenant.project.pk}", rules, key=platform_key)
    assert response.status_code == 200, response.json()
    return response.json()


def _clocked_subscription(api, tenant, sdk, stripe_webhooks, *, price="pro-monthly", quantity=1):
    start = timezone.now().replace(microsecond=0)
    clock = api.post("/api/v1/test_clocks", {"frozen_time": _z(start)}, key=tenant.key).json()
    customer = api.post(
        "/api/v1/customers", {"external_id": "user-1", "test_clock": clock["id"]}, key=tenant.key
    ).json()
    pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": customer["stripe_customer_id"]}).id
    sdk.v1.customers.update(
        customer["stripe_customer_id"], {"invoice_settings": {"default_payment_method": pm}}
    )
    created = api.post(
        "/api/v1/subscriptions", {"customer": "user-1", "price": price, "quantity": quantity}, key=tenant.key
    )
    assert created.status_code == 201, created.json()
    stripe_webhooks.deliver()
    return clock, created.json()


def _advance(api, tenant, clock, to: datetime, stripe_webhooks) -> None:
    advanced = api.post(f"/api/v1/test_clocks/{clock['id']}/advance", {"frozen_time": _z(to)}, key=tenant.key)
    assert advanced.status_code == 200, advanced.json()
    stripe_webhooks.deliver()
    assert not StripeEvent.objects.filter(status="failed").exists(), list(
        StripeEvent.objects.values_list("type", "last_error")
    )


def _calls_limit(api, tenant) -> int:
    body = api.get("/api/v1/entitlements?customer=user-1", key=tenant.key).json()
    return next(e["limit"] for e in body["entitlements"] if e["feature"] == "api_calls")


def _schedule_phases(sdk, schedule_id):
    schedule = sdk.v1.subscription_schedules.retrieve(schedule_id)
    return schedule.status, [
        (p.start_date, p.end_date, [(i.price, i.quantity) for i in p["items"]]) for p in schedule.phases
    ]


def test_the_defaults_keep_todays_behaviour(api, platform_key, tenant_a):
    body = api.get(f"/api/v1/projects/{tenant_a.project.pk}", key=platform_key).json()
    assert (body["proration_upgrade"], body["proration_downgrade"], body["proration_interval_change"]) == (
        "now_prorate",
        "now_prorate",
        "now_prorate",
    )
    refused = api.patch(
        f"/api/v1/projects/{tenant_a.project.pk}", {"proration_downgrade": "later"}, key=platform_key
    )
    assert refused.status_code == 400
    tenant_a.project.refresh_from_db()
    assert tenant_a.project.proration_downgrade == "now_prorate"


def test_a_deferred_downgrade_takes_effect_at_the_period_end_through_a_test_clock(
    api, platform_key, tenant_a, catalog, basic, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    _rules(api, platform_key, tenant_a, proration_downgrade="period_end")
    clock, created = _clocked_subscription(api, tenant_a, sdk, stripe_webhooks)
    period_end = datetime.fromisoformat(created["current_period_end"].replace("Z", "+00:00"))
    start = _ts(created["current_period_start"])
    end = int(period_end.timestamp())
    assert _calls_limit(api, tenant_a) == 1000

    preview = api.post(
        f"/api/v1/subscriptions/{created['id']}/preview", {"price": "basic-monthly"}, key=tenant_a.key
    )
    assert preview.status_code == 200, preview.json()
    assert preview.json() == {
        "amount_due": 0,
        "currency": "usd",
        "subtotal": 0,
        "discount": 0,
        "tax": 0,
        "total": 0,
        "lines": [],
        "rule": "period_end",
        "change": "downgrade",
        "effective_at": _z(period_end),
    }
    assert not sdk.v1.subscription_schedules.list().data  # a preview writes nothing

    changed = api.patch(
        f"/api/v1/subscriptions/{created['id']}", {"price": "basic-monthly"}, key=tenant_a.key
    )
    assert changed.status_code == 200, changed.json()
    body = changed.json()
    assert (body["price"], body["quantity"]) == ("pro-monthly", 1)
    assert body["pending_change"] == {
        "price": "basic-monthly",
        "quantity": 1,
        "items": [{"price": "basic-monthly", "quantity": 1}],
        "effective_at": _z(period_end),
    }
    live = sdk.v1.subscriptions.retrieve(created["stripe_subscription_id"])
    assert [(i.price.id, i.quantity) for i in live["items"].data] == [
        (catalog.pro_monthly.stripe_price_id, 1)
    ]
    assert live.schedule is not None
    next_end = sdk.v1.subscription_schedules.retrieve(live.schedule).phases[1].end_date
    assert next_end > end + 27 * 86_400  # one month of Basic, after which the schedule releases it
    assert _schedule_phases(sdk, live.schedule) == (
        "active",
        [
            (start, end, [(catalog.pro_monthly.stripe_price_id, 1)]),
            (end, next_end, [(basic.stripe_price_id, 1)]),
        ],
    )
    invoices_before = sdk.v1.invoices.list({"customer": live.customer}).data
    assert len(invoices_before) == 1  # nothing is invoiced for a deferred change
    stripe_webhooks.deliver()
    subscription = Subscription.objects.get(pk=created["id"])
    assert (subscription.price_id, subscription.pending_change["price"]) == (
        catalog.pro_monthly.pk,
        "basic-monthly",
    )
    assert (
        api.get(f"/api/v1/subscriptions/{created['id']}", key=tenant_a.key).json()["pending_change"]
        == (body["pending_change"])
    )
    audit = AuditLogEntry.objects.get(action="subscription.change_scheduled")
    assert (audit.before["price"], audit.after["price"]) == ("pro-monthly", "pro-monthly")
    events_before = Event.objects.filter(project=tenant_a.project).count()

    # An hour before the period ends: nothing has changed yet.
    _advance(api, tenant_a, clock, period_end - timedelta(hours=1), stripe_webhooks)
    assert _calls_limit(api, tenant_a) == 1000
    subscription.refresh_from_db()
    assert subscription.price_id == catalog.pro_monthly.pk

    # Past the period's end: Stripe moved the subscription to Basic and renewed it at Basic's price.
    _advance(api, tenant_a, clock, period_end + timedelta(hours=1), stripe_webhooks)
    subscription.refresh_from_db()
    assert (subscription.price_id, subscription.quantity, subscription.status) == (basic.pk, 1, "active")
    assert subscription.pending_change is None
    assert subscription.current_period_start == period_end
    assert _calls_limit(api, tenant_a) == 100
    live = sdk.v1.subscriptions.retrieve(created["stripe_subscription_id"])
    assert [(i.price.id, i.quantity) for i in live["items"].data] == [(basic.stripe_price_id, 1)]
    renewal = sdk.v1.invoices.retrieve(live.latest_invoice)
    assert (renewal.billing_reason, renewal.amount_paid) == ("subscription_cycle", 1000)
    rendered = api.get(f"/api/v1/subscriptions/{created['id']}", key=tenant_a.key).json()
    assert (rendered["price"], rendered["pending_change"]) == ("basic-monthly", None)
    new_types = list(
        Event.objects.filter(project=tenant_a.project).order_by("sequence").values_list("type", flat=True)
    )[events_before:]
    assert "subscription.updated" in new_types
    assert "entitlements.updated" in new_types
