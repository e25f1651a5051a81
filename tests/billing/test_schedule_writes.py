"""A deferred change's subscription schedule at Stripe, written once per operation: a downgrade after a dropped
one (its schedule released) is a new operation with a schedule of its own, never the released one replayed by
Stripe under the first downgrade's key. Through Tollgate's HTTP API and the emulator; what reached Stripe is
counted at the HTTP boundary (`Wire`)."""

import pytest

from billing.models import Subscription
from stripe_gateway.client import install_http_client
from tests.billing.test_lost_answers import Wire
from tests.billing.test_proration_rules import _rules, _schedule_phases, _subscribed, _ts
from tests.catalog import price_create, product_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def cheaper(tenant_a, catalog):
    """Basic: 1000 a month against Pro's 3000."""
    return price_create(
        product_create(tenant_a.project, "basic", "Basic"), "basic-monthly", 1000, interval="month"
    )


@pytest.fixture
def wire(stripe_emulator, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 2
    made = Wire(stripe_emulator)
    install_http_client(made)  # the autouse emulator fixture uninstalls it after the test
    return made


def _schedule_writes(wire):
    return [(path, key) for method, path, key in wire.reached if method == "POST" and "schedule" in path]


def test_a_downgrade_after_a_dropped_downgrade_is_scheduled_on_a_schedule_of_its_own(
    api, platform_key, tenant_a, catalog, cheaper, stripe_sdk, stripe_webhooks, wire
):
    sdk = stripe_sdk()
    _rules(api, platform_key, tenant_a, proration_downgrade="period_end")
    created = _subscribed(api, tenant_a, sdk, stripe_webhooks)
    sid = created["stripe_subscription_id"]
    start, end = _ts(created["current_period_start"]), _ts(created["current_period_end"])
    pro, basic = catalog.pro_monthly.stripe_price_id, cheaper.stripe_price_id
    path = f"/api/v1/subscriptions/{created['id']}"

    first = api.patch(path, {"price": "basic-monthly"}, key=tenant_a.key)
    assert first.status_code == 200, first.json()
    dropped = sdk.v1.subscriptions.retrieve(sid).schedule
    back = api.patch(path, {"price": "pro-monthly"}, key=tenant_a.key)
    assert (back.status_code, back.json()["pending_change"]) == (200, None)
    assert sdk.v1.subscriptions.retrieve(sid).schedule is None
    assert sdk.v1.subscription_schedules.retrieve(dropped).status == "released"
    stripe_webhooks.deliver()
    before = len(_schedule_writes(wire))

    again = api.patch(
        path, {"price": "basic-monthly"}, key=tenant_a.key, headers={"Idempotency-Key": "down-2"}
    )

    assert again.status_code == 200, again.json()
    assert again.json()["price"] == "pro-monthly"
    pending = again.json()["pending_change"]
    assert pending["items"] == [{"price": "basic-monthly", "quantity": 1}]
    schedule = sdk.v1.subscriptions.retrieve(sid).schedule
    assert schedule not in (None, dropped)
    status, phases = _schedule_phases(sdk, schedule)
    assert status == "active"
    assert phases[0] == (start, end, [(pro, 1)])
    assert (phases[1][0], phases[1][2]) == (end, [(basic, 1)])
    assert len(phases) == 2
    # One create and one update of the new schedule, the create under a key of its own.
    writes = _schedule_writes(wire)[before:]
    assert [p for p, _ in writes] == ["/v1/subscription_schedules", f"/v1/subscription_schedules/{schedule}"]
    first_create = next(key for p, key in _schedule_writes(wire) if p == "/v1/subscription_schedules")
    assert writes[0][1] != first_create
    assert {s.id: s.status for s in sdk.v1.subscription_schedules.list().data} == {
        dropped: "released",
        schedule: "active",
    }

    retry = api.patch(
        path, {"price": "basic-monthly"}, key=tenant_a.key, headers={"Idempotency-Key": "down-2"}
    )

    assert retry.status_code == 200, retry.json()
    assert retry.json()["pending_change"] == pending
    assert _schedule_writes(wire)[before:] == writes  # nothing more reached Stripe
    stripe_webhooks.deliver()
    mirrored = Subscription.objects.get(pk=created["id"]).pending_change
    assert (mirrored["stripe_schedule_id"], mirrored["price"], mirrored["effective_at"]) == (
        schedule,
        "basic-monthly",
        end,
    )


def test_a_schedule_create_replayed_after_its_release_answers_the_released_schedule(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks
):
    """Stripe replays a create under a key used before with the answer it saved then (`active`); the gateway
    answers the schedule as it is now, so the caller sees it was released since."""
    from stripe_gateway.gateway import platform_gateway
    from stripe_gateway.schedules import schedule_from_subscription

    sdk = stripe_sdk()
    sid = _subscribed(api, tenant_a, sdk, stripe_webhooks)["stripe_subscription_id"]
    gateway = platform_gateway()
    made = schedule_from_subscription(gateway, sid, idem="schedule-once")
    assert made["status"] == "active"
    sdk.v1.subscription_schedules.release(made["id"])

    again = schedule_from_subscription(gateway, sid, idem="schedule-once")

    assert (again["id"], again["status"], again["released_subscription"]) == (made["id"], "released", sid)
    assert [s.id for s in sdk.v1.subscription_schedules.list().data] == [made["id"]]
    assert sdk.v1.subscriptions.retrieve(sid).schedule is None
