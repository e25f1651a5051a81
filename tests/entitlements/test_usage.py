"""Usage events: idempotent by id (within and across batches), all-or-nothing batches, periods that reset,
late events within the grace window, and the threshold events."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from catalog.models import Feature
from entitlements.models import EntitlementSettings, UsageCounter, UsageEvent, UsageEventKey
from events.models import Event
from tests.entitlements.helpers import check, customer, feature, product, subscribe

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def calls(tenant_a):
    p = tenant_a.project
    api_calls = feature(p, "api_calls", Feature.Type.METERED)
    product(p, "free", {api_calls: 100})
    p.default_product = "free"
    p.save()
    return api_calls


def usage(api, key, event_id, quantity=1, customer="u1", feature="api_calls", **extra):
    return api.post(
        "/api/v1/usage",
        {"id": event_id, "customer": customer, "feature": feature, "quantity": quantity, **extra},
        key=key,
    )


def test_usage_event_is_counted_once(api, tenant_a, calls):
    first = usage(api, tenant_a.key, "evt-1", 5, properties={"path": "/x"})
    assert first.status_code == 201, first.json()
    body = first.json()
    assert body["id"] == "evt-1"
    assert body["object"] == "usage_event"
    assert body["quantity"] == 5
    assert body["properties"] == {"path": "/x"}
    assert body["stripe_meter"]["status"] is None
    again = usage(api, tenant_a.key, "evt-1", 5, properties={"path": "/x"})
    assert again.status_code == 200
    assert again.json() == body
    assert check(api, tenant_a.key, "u1", "api_calls")["used"] == 5
    assert UsageEvent.objects.count() == 1


def test_usage_of_a_feature_newer_than_the_cached_answer_is_recorded(api, tenant_a, calls):
    """The customer's structure is cached before a metered feature exists; the feature is then created without
    its version bump reaching the cache (the bump runs on commit, which this test's transaction never does, as a
    request racing the commit would see): the event is counted against the new feature, not a 500."""
    assert check(api, tenant_a.key, "u1", "api_calls")["used"] == 0  # the structure is cached now
    feature(tenant_a.project, "exports", Feature.Type.METERED)
    response = usage(api, tenant_a.key, "evt-new", 3, feature="exports")
    assert response.status_code == 201, response.json()
    assert list(UsageEvent.objects.values_list("event_id", "feature__key", "quantity")) == [
        ("evt-new", "exports", 3)
    ]


def test_usage_validation(api, tenant_a, calls):
    feature(tenant_a.project, "sso")
    cases = [
        ({"id": "a", "customer": "u1", "feature": "api_calls", "quantity": -1}, "quantity"),
        ({"id": "a", "customer": "u1", "feature": "api_calls", "quantity": 1.5}, "quantity"),
        ({"id": "a", "customer": "u1", "feature": "api_calls"}, "quantity"),
        ({"customer": "u1", "feature": "api_calls", "quantity": 1}, "id"),
        ({"id": "a", "customer": "u1", "feature": "nope", "quantity": 1}, "feature"),
        ({"id": "a", "customer": "u1", "feature": "sso", "quantity": 1}, "feature"),
        ({"id": "a", "customer": "u1", "feature": "api_calls", "quantity": 1, "bogus": 1}, "bogus"),
        (
            {"id": "a", "customer": "u1", "feature": "api_calls", "quantity": 1, "timestamp": "yesterday"},
            "timestamp",
        ),
    ]
    for body, param in cases:
        response = api.post("/api/v1/usage", body, key=tenant_a.key)
        assert response.status_code == 400, body
        assert response.json()["error"]["param"] == param
    assert not UsageEvent.objects.exists()


def test_batch_counts_duplicates_within_and_across_batches(api, tenant_a, calls):
    events = [
        {"id": f"e{i}", "customer": f"u{i % 3}", "feature": "api_calls", "quantity": 2} for i in range(10)
    ]
    events.append(dict(events[0]))  # the same id twice in one batch
    response = api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key)
    assert response.json() == {"accepted": 10, "duplicates": 1}
    again = api.post(
        "/api/v1/usage/batch",
        {"events": [*events[:5], {"id": "new", "customer": "u0", "feature": "api_calls", "quantity": 1}]},
        key=tenant_a.key,
    )
    assert again.json() == {"accepted": 1, "duplicates": 5}
    assert sum(UsageCounter.objects.values_list("used", flat=True)) == 21
    assert check(api, tenant_a.key, "u0", "api_calls")["used"] == 9  # e0 e3 e6 e9 (×2) + new


def test_a_batch_with_an_invalid_event_is_rejected_whole(api, tenant_a, calls):
    events = [{"id": f"e{i}", "customer": "u1", "feature": "api_calls", "quantity": 1} for i in range(5)]
    events[3]["quantity"] = "many"
    response = api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "events[3].quantity"
    events[3]["quantity"] = 1
    events[4]["timestamp"] = (timezone.now() - timedelta(days=90)).isoformat()
    response = api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "events[4].timestamp"
    assert "too old" in response.json()["error"]["message"]
    assert not UsageEvent.objects.exists()
    assert not UsageCounter.objects.exists()
    too_many = [{"id": f"x{i}", "customer": "u1", "feature": "api_calls", "quantity": 1} for i in range(1001)]
    assert api.post("/api/v1/usage/batch", {"events": too_many}, key=tenant_a.key).status_code == 400


def test_monthly_period_resets_and_late_events_count_within_the_grace_window(api, tenant_a, calls):
    with time_machine.travel(START, tick=False):
        assert usage(api, tenant_a.key, "march-1", 40).status_code == 201
        assert check(api, tenant_a.key, "u1", "api_calls")["used"] == 40
    april = datetime(2026, 4, 1, 0, 30, tzinfo=UTC)
    with time_machine.travel(april, tick=False):
        answer = check(api, tenant_a.key, "u1", "api_calls")
        assert (answer["used"], answer["remaining"]) == (0, 100)  # a new period, without any write
        late = usage(api, tenant_a.key, "march-late", 7, timestamp="2026-03-31T23:59:00Z")
        assert late.status_code == 201, late.json()
        assert late.json()["period_start"].startswith("2026-03-01")
        assert check(api, tenant_a.key, "u1", "api_calls")["used"] == 0
    with time_machine.travel(datetime(2026, 4, 1, 1, 0, 1, tzinfo=UTC), tick=False):
        too_late = usage(api, tenant_a.key, "march-later", 1, timestamp="2026-03-31T23:59:30Z")
        assert too_late.status_code == 400
        assert too_late.json()["error"]["code"] == "timestamp_too_old"
    assert UsageCounter.objects.get(period_start=datetime(2026, 3, 1, tzinfo=UTC)).used == 47


def test_a_late_or_backfilled_event_counts_in_the_period_its_second_was_counted_in_then(api, tenant_a, calls):
    """Before a plan's period there was the free plan's calendar month: usage stamped then (late, within the grace
    window, or backfilled with no billing side effects) counts in that month's counter, beside what it held, not
    in a period of the new plan's cycle stepped back that nothing ever counted in."""
    with time_machine.travel(START, tick=False):
        assert usage(api, tenant_a.key, "march-1", 40).status_code == 201
    plan_start = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
    with time_machine.travel(plan_start + timedelta(minutes=30), tick=False):
        subscribe(
            customer(tenant_a.project, "u1"), product(tenant_a.project, "pro", {calls: 500}), start=plan_start
        )
        late = usage(api, tenant_a.key, "late", 2, timestamp="2026-03-15T11:59:00Z")
        assert late.status_code == 201, late.json()
        assert late.json()["period_start"] == "2026-03-01T00:00:00Z"
    with time_machine.travel(datetime(2026, 3, 20, tzinfo=UTC), tick=False):
        body = {"timestamp": "2026-03-12T08:00:00Z", "no_billing_side_effects": True}
        backfilled = usage(api, tenant_a.key, "backfilled", 5, **body)
        assert backfilled.status_code == 201, backfilled.json()
        assert backfilled.json()["period_start"] == "2026-03-01T00:00:00Z"
        assert check(api, tenant_a.key, "u1", "api_calls")["used"] == 0  # the plan's period
    assert list(UsageCounter.objects.values_list("period_start", "period_end", "used")) == [
        (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), 47)
    ]


def test_grace_window_is_a_project_setting(api, tenant_a, calls):
    EntitlementSettings.objects.create(project=tenant_a.project, usage_grace_seconds=60)
    with time_machine.travel(datetime(2026, 4, 1, 0, 2, tzinfo=UTC), tick=False):
        response = usage(api, tenant_a.key, "late", 1, timestamp="2026-03-31T23:59:00Z")
        assert response.status_code == 400


def test_future_events_are_refused(api, tenant_a, calls):
    response = usage(api, tenant_a.key, "f", 1, timestamp=(timezone.now() + timedelta(hours=1)).isoformat())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "timestamp_in_future"


def test_subscription_period_is_the_metered_period(api, tenant_a, calls):
    pro = product(tenant_a.project, "pro", {calls: 1000})
    with time_machine.travel(START, tick=False):
        sub = subscribe(customer(tenant_a.project, "u1"), pro, start=START - timedelta(days=5), days=30)
        usage(api, tenant_a.key, "a", 10)
        assert check(api, tenant_a.key, "u1", "api_calls")["used"] == 10
    # The period ends; Stripe's renewal is not mirrored yet: the period rolls over on time anyway.
    with time_machine.travel(sub.current_period_end + timedelta(minutes=5), tick=False):
        answer = check(api, tenant_a.key, "u1", "api_calls")
        assert (answer["used"], answer["limit"]) == (0, 1000)


def test_threshold_events_at_80_and_100_percent(api, tenant_a, calls):
    usage(api, tenant_a.key, "a", 79)
    assert not Event.objects.filter(type="usage.threshold_reached").exists()
    usage(api, tenant_a.key, "b", 1)
    usage(api, tenant_a.key, "c", 30)
    events = list(Event.objects.filter(type="usage.threshold_reached").order_by("sequence"))
    assert [(e.data["object"]["threshold"], e.data["object"]["used"]) for e in events] == [
        (0.8, 80),
        (1.0, 110),
    ]
    assert events[0].data["object"]["customer"] == "u1"
    assert events[0].data["object"]["limit"] == 100
    usage(api, tenant_a.key, "d", 5)
    assert Event.objects.filter(type="usage.threshold_reached").count() == 2


def test_a_batch_names_the_first_event_whose_feature_is_refused_and_records_nothing(api, tenant_a, calls):
    feature(tenant_a.project, "sso", Feature.Type.BOOLEAN)
    events = [{"id": f"e{i}", "customer": "u1", "feature": "api_calls", "quantity": 1} for i in range(8)]
    events[2]["timestamp"] = (timezone.now() - timedelta(days=90)).isoformat()  # features are checked first
    events[5]["feature"] = "sso"
    events[7]["feature"] = "nope"
    response = api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "feature_not_metered"
    assert response.json()["error"]["param"] == "events[5].feature"
    events[5]["feature"] = "api_calls"
    response = api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key)
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
        "unknown_feature",
        "events[7].feature",
    )
    assert not UsageEvent.objects.exists()
    assert not UsageEventKey.objects.exists()
    assert not UsageCounter.objects.exists()


def test_a_batch_of_new_and_retried_events_records_each_once_with_its_key(api, tenant_a, calls):
    """On PostgreSQL the retried ids make the keys' COPY fail: the batch claims its keys one by one instead."""
    first = [
        {"id": f"e{i}", "customer": f"u{i % 2}", "feature": "api_calls", "quantity": 3} for i in range(4)
    ]
    assert api.post("/api/v1/usage/batch", {"events": first}, key=tenant_a.key).json() == {
        "accepted": 4,
        "duplicates": 0,
    }
    mixed = [
        *first[1:3],
        {"id": "n1", "customer": "u0", "feature": "api_calls", "quantity": 5, "properties": {"k": "v"}},
        {"id": "n2", "customer": "u1", "feature": "api_calls", "quantity": 7},
        {"id": "n1", "customer": "u0", "feature": "api_calls", "quantity": 5},  # twice in the batch
    ]
    assert api.post("/api/v1/usage/batch", {"events": mixed}, key=tenant_a.key).json() == {
        "accepted": 2,
        "duplicates": 3,
    }
    assert api.post("/api/v1/usage/batch", {"events": mixed}, key=tenant_a.key).json() == {
        "accepted": 0,
        "duplicates": 5,
    }
    stored = dict(UsageEvent.objects.values_list("event_id", "quantity"))
    assert stored == {"e0": 3, "e1": 3, "e2": 3, "e3": 3, "n1": 5, "n2": 7}
    assert UsageEvent.objects.get(event_id="n1").properties == {"k": "v"}
    keys = dict(UsageEventKey.objects.values_list("event_id", "usage_event_id"))
    assert keys == dict(UsageEvent.objects.values_list("event_id", "id"))
    assert sorted(UsageCounter.objects.values_list("customer__external_id", "used")) == [
        ("u0", 11),
        ("u1", 13),
    ]
