"""Proration rules per project and direction, end to end through Tollgate's HTTP API and the emulator (checked
through the official SDK): a downgrade the project defers to the period's end is held by a Stripe subscription
schedule (`from_subscription`, then a second phase), shown as the subscription's `pending_change` and previewed
as such; a test clock carried through the whole period moves the subscription to it at the period's end, and
only then do the mirror, the entitlements and the tenant events change. A second change replaces the pending
one, an immediate change or a cancellation drops it, and the defaults keep today's behaviour."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from billing.models import Subscription
from catalog.models import Feature
from core.models import AuditLogEntry
from customers.models import Customer
from customers.services.customers import customer_ensure_stripe
from events.models import Event
from stripe_gateway.client import install_http_client
from tests.billing.test_lost_answers import Wire
from tests.catalog import price_create, product_create
from tests.entitlements.factories import FeatureFactory, ProductFeatureFactory
from webhooks.models import StripeEvent

pytestmark = pytest.mark.django_db

RETURN = "https://app.example.com/account"


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
    assert audit.before["pending_change"] is None
    assert audit.after["pending_change"] == {
        "stripe_schedule_id": live.schedule,
        "price": "basic-monthly",
        "quantity": 1,
        "items": [["basic-monthly", 1]],
        "effective_at": end,
    }
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

    # Through Basic's first period: the schedule completes and releases the subscription, which renews on Basic.
    _advance(
        api, tenant_a, clock, datetime.fromtimestamp(next_end, UTC) + timedelta(hours=1), stripe_webhooks
    )
    schedule = sdk.v1.subscription_schedules.retrieve(sdk.v1.subscription_schedules.list().data[0].id)
    assert (schedule.status, schedule.released_subscription) == (
        "completed",
        created["stripe_subscription_id"],
    )
    live = sdk.v1.subscriptions.retrieve(created["stripe_subscription_id"])
    assert (live.schedule, [(i.price.id, i.quantity) for i in live["items"].data]) == (
        None,
        [(basic.stripe_price_id, 1)],
    )
    assert sdk.v1.invoices.retrieve(live.latest_invoice).amount_paid == 1000
    subscription.refresh_from_db()
    assert (subscription.price_id, subscription.pending_change) == (basic.pk, None)
    assert _calls_limit(api, tenant_a) == 100


def _subscribed(api, tenant, sdk, stripe_webhooks, *, price="pro-monthly", quantity=1):
    """A customer on the platform's clock with a saved card, subscribed through the API."""
    api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant.key)
    stripe_customer = customer_ensure_stripe(customer=Customer.objects.get(external_id="user-1"))
    pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer}).id
    sdk.v1.customers.update(stripe_customer, {"invoice_settings": {"default_payment_method": pm}})
    created = api.post(
        "/api/v1/subscriptions", {"customer": "user-1", "price": price, "quantity": quantity}, key=tenant.key
    )
    assert created.status_code == 201, created.json()
    stripe_webhooks.deliver()
    return created.json()


def _live_items(sdk, stripe_subscription_id):
    live = sdk.v1.subscriptions.retrieve(stripe_subscription_id)
    return live, [(i.price.id, i.quantity) for i in live["items"].data]


def test_a_second_change_replaces_the_pending_one_and_an_immediate_one_or_a_cancellation_drops_it(
    api, platform_key, tenant_a, catalog, basic, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    _rules(api, platform_key, tenant_a, proration_downgrade="period_end")
    created = _subscribed(api, tenant_a, sdk, stripe_webhooks, quantity=3)
    path = f"/api/v1/subscriptions/{created['id']}"
    pro = catalog.pro_monthly.stripe_price_id

    first = api.patch(path, {"price": "basic-monthly"}, key=tenant_a.key).json()
    assert first["pending_change"]["items"] == [{"price": "basic-monthly", "quantity": 3}]
    live, items = _live_items(sdk, created["stripe_subscription_id"])
    schedule_id = live.schedule
    # Fewer seats of Basic: a downgrade too, replacing the pending one on the same schedule.
    second = api.patch(path, {"price": "basic-monthly", "quantity": 2}, key=tenant_a.key).json()
    assert second["pending_change"]["items"] == [{"price": "basic-monthly", "quantity": 2}]
    live, items = _live_items(sdk, created["stripe_subscription_id"])
    assert (live.schedule, items) == (schedule_id, [(pro, 3)])
    status, phases = _schedule_phases(sdk, schedule_id)
    assert (status, [p[2] for p in phases]) == ("active", [[(pro, 3)], [(basic.stripe_price_id, 2)]])
    assert len(sdk.v1.subscription_schedules.list().data) == 1

    # An upgrade (the default rule: now, prorated) drops the pending downgrade first.
    upgraded = api.patch(path, {"quantity": 4}, key=tenant_a.key)
    assert upgraded.status_code == 200, upgraded.json()
    assert (upgraded.json()["quantity"], upgraded.json()["pending_change"]) == (4, None)
    live, items = _live_items(sdk, created["stripe_subscription_id"])
    assert (live.schedule, items) == (None, [(pro, 4)])
    released = sdk.v1.subscription_schedules.retrieve(schedule_id)
    assert (released.status, released.released_subscription) == (
        "released",
        created["stripe_subscription_id"],
    )
    stripe_webhooks.deliver()
    assert Subscription.objects.get(pk=created["id"]).pending_change is None

    # A deferred change, then a cancellation at the period's end: the change is dropped, the cancel made.
    api.patch(path, {"price": "basic-monthly"}, key=tenant_a.key)
    schedule_id = sdk.v1.subscriptions.retrieve(created["stripe_subscription_id"]).schedule
    canceled = api.post(f"{path}/cancel", {}, key=tenant_a.key)
    assert canceled.status_code == 200, canceled.json()
    assert (canceled.json()["cancel_at_period_end"], canceled.json()["pending_change"]) == (True, None)
    live, items = _live_items(sdk, created["stripe_subscription_id"])
    assert (live.schedule, live.cancel_at_period_end, items) == (None, True, [(pro, 4)])
    assert sdk.v1.subscription_schedules.retrieve(schedule_id).status == "released"
    # Nothing to defer to once it cancels at the period's end.
    refused = api.patch(path, {"price": "basic-monthly"}, key=tenant_a.key)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "subscription_canceling")
    assert sdk.v1.subscriptions.retrieve(created["stripe_subscription_id"]).schedule is None
    stripe_webhooks.deliver()
    assert Subscription.objects.get(pk=created["id"]).pending_change is None
    assert [a.action for a in AuditLogEntry.objects.filter(action__startswith="subscription.")].count(
        "subscription.change_scheduled"
    ) == 3


def test_the_request_proration_behavior_wins_and_now_no_proration_prorates_nothing(
    api, platform_key, tenant_a, catalog, basic, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    _rules(
        api, platform_key, tenant_a, proration_downgrade="period_end", proration_upgrade="now_no_proration"
    )
    created = _subscribed(api, tenant_a, sdk, stripe_webhooks)
    path = f"/api/v1/subscriptions/{created['id']}"

    now = api.patch(path, {"price": "basic-monthly", "proration_behavior": "none"}, key=tenant_a.key)
    assert now.status_code == 200, now.json()
    assert (now.json()["price"], now.json()["pending_change"]) == ("basic-monthly", None)
    live, items = _live_items(sdk, created["stripe_subscription_id"])
    assert (live.schedule, items) == (None, [(basic.stripe_price_id, 1)])
    assert sdk.v1.invoice_items.list({"customer": live.customer}).data == []
    stripe_webhooks.deliver()  # the direction of the next change is read on the mirror

    preview = api.post(f"{path}/preview", {"price": "pro-monthly"}, key=tenant_a.key).json()
    assert (preview["rule"], preview["change"], preview["effective_at"]) == (
        "now_no_proration",
        "upgrade",
        None,
    )
    up = api.patch(path, {"price": "pro-monthly"}, key=tenant_a.key)
    assert up.status_code == 200, up.json()
    live, items = _live_items(sdk, created["stripe_subscription_id"])
    assert items == [(catalog.pro_monthly.stripe_price_id, 1)]
    assert sdk.v1.invoice_items.list({"customer": live.customer}).data == []  # no proration at all


def test_a_deferred_change_retried_after_lost_answers_is_made_once(
    api, platform_key, tenant_a, catalog, basic, stripe_sdk, stripe_webhooks, stripe_emulator, settings
):
    sdk = stripe_sdk()
    _rules(api, platform_key, tenant_a, proration_downgrade="period_end")
    created = _subscribed(api, tenant_a, sdk, stripe_webhooks)
    settings.STRIPE_MAX_NETWORK_RETRIES = 2
    wire = Wire(stripe_emulator)
    install_http_client(wire)
    wire.lose("POST", "/v1/subscription_schedules", times=3)
    wire.lose("POST", r"/v1/subscription_schedules/sub_sched_\w+", times=3)
    path = f"/api/v1/subscriptions/{created['id']}"
    headers = {"Idempotency-Key": "downgrade-1"}

    first = api.patch(path, {"price": "basic-monthly"}, key=tenant_a.key, headers=headers)
    assert first.status_code == 503, first.content
    second = api.patch(path, {"price": "basic-monthly"}, key=tenant_a.key, headers=headers)
    assert second.status_code == 503, second.content
    third = api.patch(path, {"price": "basic-monthly"}, key=tenant_a.key, headers=headers)
    assert third.status_code == 200, third.content
    assert third.json()["pending_change"]["price"] == "basic-monthly"

    schedules = sdk.v1.subscription_schedules.list().data
    assert len(schedules) == 1
    assert [(i.price, i.quantity) for i in schedules[0].phases[1]["items"]] == [(basic.stripe_price_id, 1)]
    kinds = [
        e.type for e in sdk.v1.events.list({"limit": 100}).data if e.type.startswith("subscription_schedule.")
    ]
    assert sorted(kinds) == ["subscription_schedule.created", "subscription_schedule.updated"]
    creates = [r for r in wire.reached if r[:2] == ("POST", "/v1/subscription_schedules")]
    assert len({key for _, _, key in creates}) == 1  # every attempt of the create under one key


def test_the_portal_follows_the_rules(
    api, platform_key, tenant_a, catalog, basic, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """The portal's configuration at Stripe carries the rules (`proration_behavior` from the upgrade rule,
    `schedule_at_period_end` conditions for deferred downgrades and interval changes), and a downgrade made in
    the emulator's portal page is scheduled: Tollgate mirrors it as the subscription's `pending_change`."""
    sdk = stripe_sdk()
    _rules(
        api,
        platform_key,
        tenant_a,
        proration_upgrade="now_no_proration",
        proration_downgrade="period_end",
        proration_interval_change="period_end",
    )
    created = _subscribed(api, tenant_a, sdk, stripe_webhooks, quantity=2)
    end = _ts(created["current_period_end"])
    for product in ("pro", "basic"):  # the portal offers the project's public plans only
        assert api.patch(f"/api/v1/products/{product}", {"public": True}, key=tenant_a.key).status_code == 200
    portal = api.post("/api/v1/portal", {"customer": "user-1", "return_url": RETURN}, key=tenant_a.key).json()
    tenant_a.project.refresh_from_db()
    config = sdk.v1.billing_portal.configurations.retrieve(tenant_a.project.stripe_portal_configuration_id)
    update = config.features.subscription_update
    assert update.proration_behavior == "none"
    assert [c.type for c in update.schedule_at_period_end.conditions] == [
        "decreasing_item_amount",
        "shortening_interval",
    ]

    # The schedule's events (made and updated in the same second) arrive shuffled and twice: the mirror still
    # ends where Stripe is (a tie is settled by reading the schedule).
    stripe_emulator.webhooks.shuffle = True
    stripe_emulator.webhooks.duplicates = True
    switched = stripe_emulator.handle(
        "POST",
        f"{urlsplit(portal['url']).path}/subscriptions/{created['stripe_subscription_id']}/update",
        body=f"price={basic.stripe_price_id}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert switched.status == 303
    stripe_webhooks.deliver()
    live, items = _live_items(sdk, created["stripe_subscription_id"])
    assert items == [(catalog.pro_monthly.stripe_price_id, 2)]
    assert live.schedule is not None
    mirrored = api.get(f"/api/v1/subscriptions/{created['id']}", key=tenant_a.key).json()
    assert (mirrored["price"], mirrored["pending_change"]["items"]) == (
        "pro-monthly",
        [{"price": "basic-monthly", "quantity": 2}],
    )
    assert _ts(mirrored["pending_change"]["effective_at"]) == end
