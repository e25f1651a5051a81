"""Usage windows at their edges (issue #51 point 2): recorded usage stamped ahead of the present, a test clock's
customer's answers, `as_of` of a hold that ended in a later window, an answer a cap refuses, and a batch whose
events fall in two windows of one size."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from catalog.models import Feature
from customers.models import TestClock
from entitlements.models import UsageWindowCounter
from tests.entitlements.helpers import customer, feature, product, subscribe

pytestmark = pytest.mark.django_db

CONSUME = "/api/v1/entitlements/consume"
HOLDS = "/api/v1/entitlements/holds"
# A Wednesday, 10:00:20 UTC: 40 s left in its minute.
START = datetime(2026, 11, 25, 10, 0, 20, tzinfo=UTC)


@pytest.fixture
def windowed(tenant_a):
    p = tenant_a.project
    calls = feature(p, "api_calls", Feature.Type.METERED)
    with time_machine.travel(START, tick=False):
        subscribe(
            customer(p, "u1"),
            product(p, "pro", {calls: {"limit": 1000, "windows": {"minute": 5, "hour": 8}}}),
        )
    return calls


def consume(api, tenant, event_id, quantity=1):
    body = {"id": event_id, "customer": "u1", "feature": "api_calls", "quantity": quantity}
    response = api.post(CONSUME, body, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def check(api, tenant, quantity=1, extra=""):
    url = f"/api/v1/entitlements/check?customer=u1&feature=api_calls&quantity={quantity}{extra}"
    response = api.get(url, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def _z(moment):
    return moment.isoformat().replace("+00:00", "Z")


def test_recorded_usage_stamped_ahead_never_lets_the_current_window_pass_its_limit(api, tenant_a, windowed):
    """POST /usage accepts timestamps up to 300 s ahead (clock skew): such an event counts in the window running
    now, so the minute's row never moves ahead to where the consumes of this minute would count, past its 5."""
    with time_machine.travel(START, tick=False):
        assert [consume(api, tenant_a, f"c{i}")["allowed"] for i in range(5)] == [True] * 5
        ahead = {
            "id": "skewed",
            "customer": "u1",
            "feature": "api_calls",
            "quantity": 1,
            "timestamp": _z(START + timedelta(seconds=90)),  # 10:01:50, the next minute
        }
        assert api.post("/api/v1/usage", ahead, key=tenant_a.key).status_code == 201
    with time_machine.travel(START + timedelta(seconds=5), tick=False):
        # Still minute 10:00, which already holds 5 of 5: nothing more fits in it.
        allowed = [consume(api, tenant_a, f"d{i}")["allowed"] for i in range(4)]
        assert allowed == [False] * 4, "minute 10:00 took more than its limit of 5"


def test_recorded_usage_stamped_ahead_counts_in_the_window_running_now(api, tenant_a, windowed):
    """The event stamped in the next minute (clock skew) counts in this one, where the check reads it."""
    with time_machine.travel(START, tick=False):
        for i in range(4):
            consume(api, tenant_a, f"c{i}")
        ahead = {
            "id": "skewed",
            "customer": "u1",
            "feature": "api_calls",
            "quantity": 1,
            "timestamp": _z(START + timedelta(seconds=90)),
        }
        assert api.post("/api/v1/usage", ahead, key=tenant_a.key).status_code == 201
        answer = check(api, tenant_a)
        assert [(w["window"], w["used"], w["remaining"]) for w in answer["windows"]] == [
            ("minute", 5, 0),
            ("hour", 5, 3),
        ]
        assert (answer["allowed"], answer["binding"]) == (False, "minute")
        assert UsageWindowCounter.objects.get(span="minute").window_start == datetime(
            2026, 11, 25, 10, 0, tzinfo=UTC
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_events_fall_in_two_minutes_counts_the_later_one(api, tenant_a, windowed):
    """Two events of one customer and feature in two minutes, in one batch: one statement may not move the
    minute's row twice; the minute that is over counts nowhere, the hour has both."""
    moment = START + timedelta(seconds=45)  # 10:01:05
    with time_machine.travel(moment, tick=False):
        events = [
            {"id": "a", "customer": "u1", "feature": "api_calls", "quantity": 2, "timestamp": _z(START)},
            {"id": "b", "customer": "u1", "feature": "api_calls", "quantity": 3, "timestamp": _z(moment)},
        ]
        response = api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key)
        assert response.status_code == 200, response.json()
        answer = check(api, tenant_a)
    assert [(w["window"], w["used"]) for w in answer["windows"]] == [("minute", 3), ("hour", 5)]
    assert answer["used"] == 5


CLOCK = datetime(2026, 10, 7, 15, 30, 10, tzinfo=UTC)  # a test clock's frozen time, weeks before START


@pytest.fixture
def on_clock(tenant_a):
    p = tenant_a.project
    calls = feature(p, "api_calls", Feature.Type.METERED)
    clock = TestClock.objects.create(
        project=p,
        frozen_time=CLOCK,
        deletes_after=CLOCK + timedelta(days=60),
        stripe_test_clock_id="clock_review",
    )
    with time_machine.travel(START, tick=False):
        cust = customer(p, "u1")
        cust.test_clock = clock
        cust.save(update_fields=["test_clock"])
        subscribe(
            cust,
            product(p, "pro", {calls: {"limit": 1000, "windows": {"minute": 5, "hour": 8}}}),
            start=CLOCK - timedelta(days=1),
        )
    return calls


def test_a_consume_on_a_test_clock_answers_its_windows_at_the_clocks_time(api, tenant_a, on_clock):
    """The consume counts in the clock's windows (`judged_at`) and answers them there, as the check does."""
    with time_machine.travel(START, tick=False):
        answers = [consume(api, tenant_a, f"c{i}") for i in range(6)]
        assert [a["allowed"] for a in answers] == [True] * 5 + [False]
        checked = check(api, tenant_a)
        assert (checked["windows"][0]["used"], checked["binding"]) == (5, "minute")
        assert answers[4]["windows"][0]["used"] == 5
        assert (answers[5]["binding"], answers[5]["retry_after"]) == ("minute", 50)


def test_as_of_counts_a_confirmed_holds_units_in_the_window_they_were_taken_from(api, tenant_a, windowed):
    """Live, a hold's units count in the windows current at its creation (`Hold.windows`), confirmed or not:
    as_of a moment after its confirm in the next minute answers as live did then."""
    placed_at = START + timedelta(seconds=30)  # 10:00:50
    with time_machine.travel(placed_at, tick=False):
        body = {"id": "job", "customer": "u1", "feature": "api_calls", "quantity": 4}
        assert api.post(HOLDS, body, key=tenant_a.key).json()["allowed"] is True
    with time_machine.travel(START + timedelta(seconds=50), tick=False):  # 10:01:10
        assert api.post(f"{HOLDS}/job/confirm", {}, key=tenant_a.key).status_code == 200
    moment = START + timedelta(seconds=60)  # 10:01:20
    with time_machine.travel(moment, tick=False):
        live = check(api, tenant_a)
        live_windows = [(w["window"], w["used"], w["held"], w["remaining"]) for w in live["windows"]]
        assert live_windows == [("minute", 0, 0, 5), ("hour", 4, 0, 4)]
    with time_machine.travel(START + timedelta(minutes=10), tick=False):
        past = check(api, tenant_a, extra=f"&as_of={_z(moment)}")
        past_windows = [(w["window"], w["used"], w["held"], w["remaining"]) for w in past["windows"]]
        assert past_windows == live_windows


def test_an_answer_a_spend_cap_refuses_lists_its_windows(api, tenant_a):
    """docs/integration.md: "Every check, consume and hold answer of a metered feature lists its windows": one a
    cap refuses too (the local client's consume copies the answer's windows into its snapshot)."""
    p = tenant_a.project
    calls = feature(p, "api_calls", Feature.Type.METERED)
    value = {"limit": 3, "overage": "allowed", "cap": {"units": 1}, "windows": {"minute": 4, "hour": 10}}
    with time_machine.travel(START, tick=False):
        subscribe(customer(p, "u1"), product(p, "pro", {calls: value}))
        assert [consume(api, tenant_a, f"c{i}")["allowed"] for i in range(5)] == [True] * 4 + [False]
        answer = check(api, tenant_a)
    assert answer["binding"] == "cap"
    assert [(w["window"], w["used"], w["remaining"]) for w in answer["windows"]] == [
        ("minute", 4, 0),
        ("hour", 4, 6),
    ]
