"""Usage windows: a metered feature's value may limit use per calendar minute, hour, day or week (UTC) beside
its period's limit (`{"limit": 1000, "windows": {"minute": 5, "hour": 8}}`). Consumes and holds are refused by
the window that is full, naming it and when it frees up; recorded usage counts in its windows and is never
refused; a hold's unused units go back to the window they came from; the limits hold under concurrency."""

import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from catalog.models import Feature
from entitlements.explain import entitlements_explain
from entitlements.models import Hold, UsageCounter, UsageEvent, UsageWindowCounter
from entitlements.windows import window_bounds
from events.models import Event
from tests.entitlements.helpers import customer, feature, product, subscribe
from tests.entitlements.test_consume import _concurrently, _post

CONSUME = "/api/v1/entitlements/consume"
HOLDS = "/api/v1/entitlements/holds"
# A Wednesday, 10:00:20 UTC: 40 s left in its minute, 59 min 40 s in its hour.
START = datetime(2026, 11, 25, 10, 0, 20, tzinfo=UTC)
WINDOWS = {"minute": 5, "hour": 8}


@pytest.fixture
def windowed(tenant_a):
    p = tenant_a.project
    calls = feature(p, "api_calls", Feature.Type.METERED)
    with time_machine.travel(START, tick=False):
        subscribe(customer(p, "u1"), product(p, "pro", {calls: {"limit": 1000, "windows": WINDOWS}}))
    return calls


def consume(api, tenant, event_id, quantity=1):
    body = {"id": event_id, "customer": "u1", "feature": "api_calls", "quantity": quantity}
    response = api.post(CONSUME, body, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def check(api, tenant, quantity=1):
    url = f"/api/v1/entitlements/check?customer=u1&feature=api_calls&quantity={quantity}"
    response = api.get(url, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def _windows(answer):
    return [(w["window"], w["used"], w["held"], w["remaining"], w["resets_at"]) for w in answer["windows"]]


def test_the_minute_window_refuses_the_sixth_use_and_says_when_it_frees_up(api, tenant_a, windowed):
    with time_machine.travel(START, tick=False):
        answers = [consume(api, tenant_a, f"c{i}") for i in range(5)]
        assert [a["allowed"] for a in answers] == [True] * 5
        assert _windows(answers[-1]) == [
            ("minute", 5, 0, 0, "2026-11-25T10:01:00Z"),
            ("hour", 5, 0, 3, "2026-11-25T11:00:00Z"),
        ]
        refused = consume(api, tenant_a, "c5")
        assert (refused["allowed"], refused["binding"], refused["retry_after"]) == (False, "minute", 40)
        assert (refused["used"], refused["remaining"]) == (5, 995)
        asked = check(api, tenant_a)
        assert (asked["allowed"], asked["binding"], asked["retry_after"]) == (False, "minute", 40)
        assert check(api, tenant_a, quantity=0)["allowed"] is True
    # Nothing of the refused use was recorded.
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == [f"c{i}" for i in range(5)]
    assert UsageCounter.objects.get().used == 5
    assert UsageWindowCounter.objects.get(span="minute").used == 5

    # The next minute frees the minute window; the hour's 8 then binds, until 11:00.
    with time_machine.travel(START + timedelta(seconds=40), tick=False):
        assert check(api, tenant_a)["windows"][0]["used"] == 0
        assert [consume(api, tenant_a, f"d{i}")["allowed"] for i in range(4)] == [True, True, True, False]
        refused = check(api, tenant_a)
        assert (refused["binding"], refused["retry_after"]) == ("hour", 3540)
        assert _windows(refused) == [
            ("minute", 3, 0, 2, "2026-11-25T10:02:00Z"),
            ("hour", 8, 0, 0, "2026-11-25T11:00:00Z"),
        ]
    with time_machine.travel(datetime(2026, 11, 25, 11, 0, 0, tzinfo=UTC), tick=False):
        assert consume(api, tenant_a, "e0")["allowed"] is True
    assert UsageCounter.objects.get().used == 9


def test_a_use_larger_than_a_window_never_fits_and_has_no_retry_after(api, tenant_a, windowed):
    with time_machine.travel(START, tick=False):
        refused = consume(api, tenant_a, "big", 6)
    assert (refused["allowed"], refused["binding"], refused["retry_after"]) == (False, "minute", None)
    assert not UsageEvent.objects.exists()


def test_the_period_binds_when_it_frees_up_after_the_windows(api, tenant_a):
    p = tenant_a.project
    calls = feature(p, "api_calls", Feature.Type.METERED)
    with time_machine.travel(START, tick=False):
        subscription = subscribe(
            customer(p, "u1"), product(p, "pro", {calls: {"limit": 3, "windows": {"minute": 3}}})
        )
        assert [consume(api, tenant_a, f"c{i}")["allowed"] for i in range(4)] == [True, True, True, False]
        refused = check(api, tenant_a)
    end = subscription.current_period_end
    assert refused["binding"] == "period"
    assert refused["retry_after"] == int((end - START).total_seconds())


def test_recorded_usage_counts_in_its_window_and_is_never_refused(api, tenant_a, windowed):
    with time_machine.travel(START, tick=False):
        events = [{"id": f"u{i}", "customer": "u1", "feature": "api_calls", "quantity": 3} for i in range(3)]
        assert api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key).status_code == 200
        answer = check(api, tenant_a)
        assert _windows(answer) == [
            ("minute", 9, 0, 0, "2026-11-25T10:01:00Z"),
            ("hour", 9, 0, 0, "2026-11-25T11:00:00Z"),
        ]
        assert (answer["allowed"], answer["binding"], answer["retry_after"]) == (False, "hour", 3580)
        # An event of the window before counts in that window's period, not in the current window.
        late = {
            "id": "late",
            "customer": "u1",
            "feature": "api_calls",
            "quantity": 1,
            "timestamp": (START - timedelta(hours=1)).isoformat(),
        }
        assert api.post("/api/v1/usage", late, key=tenant_a.key).status_code == 201
        assert _windows(check(api, tenant_a))[1][1] == 9
    assert UsageCounter.objects.get().used == 10


def test_a_hold_takes_from_the_windows_and_gives_back_what_it_did_not_use(api, tenant_a, windowed):
    with time_machine.travel(START, tick=False):
        placed = api.post(
            HOLDS, {"id": "job", "customer": "u1", "feature": "api_calls", "quantity": 4}, key=tenant_a.key
        ).json()
        assert placed["allowed"] is True
        assert _windows(placed["entitlement"])[0] == ("minute", 0, 4, 1, "2026-11-25T10:01:00Z")
        assert consume(api, tenant_a, "c0", 2)["binding"] == "minute"
        confirmed = api.post(f"{HOLDS}/job/confirm", {"quantity": 1}, key=tenant_a.key).json()
        assert _windows(confirmed["entitlement"]) == [
            ("minute", 1, 0, 4, "2026-11-25T10:01:00Z"),
            ("hour", 1, 0, 7, "2026-11-25T11:00:00Z"),
        ]
        assert consume(api, tenant_a, "c1", 4)["allowed"] is True
        assert consume(api, tenant_a, "c2")["binding"] == "minute"
    assert Hold.objects.get().windows == {
        "minute": window_bounds("minute", START.timestamp())[0],
        "hour": window_bounds("hour", START.timestamp())[0],
    }
    # A hold released after its minute passed gives nothing back to the next minute, and its units back to the
    # hour it is still in.
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        placed = api.post(
            HOLDS, {"id": "job2", "customer": "u1", "feature": "api_calls", "quantity": 2}, key=tenant_a.key
        )
        assert placed.json()["allowed"] is True
    with time_machine.travel(START + timedelta(minutes=2), tick=False):
        assert consume(api, tenant_a, "c3")["allowed"] is True
        assert _windows(check(api, tenant_a))[1][1:3] == (6, 2)
        api.post(f"{HOLDS}/job2/release", {}, key=tenant_a.key)
        assert [w[1:3] for w in _windows(check(api, tenant_a))] == [(1, 0), (6, 0)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"limit": 100, "windows": {"minute": 10, "hour": 5}},
            "contradictory windows: 10 a minute is more than the 5 a hour allows.",
        ),
        (
            {"limit": 100, "windows": {"day": 500}},
            "contradictory windows: 500 a day is more than the period's limit of 100.",
        ),
        (
            {"limit": 100, "windows": {"second": 1}},
            "unknown window 'second'; windows are minute, hour, day and week.",
        ),
        (
            {"limit": 100, "windows": {"minute": -1}},
            "windows.minute is an integer ≥ 0, the most units used in one minute.",
        ),
        (
            {"limit": 100, "windows": {}},
            'windows is an object of limits per window: {"minute": 100, "day": 5000}.',
        ),
    ],
    ids=["shorter-allows-more", "above-the-period", "unknown", "negative", "empty"],
)
def test_contradictory_or_malformed_windows_are_refused_and_nothing_changes(
    api, tenant_a, catalog, value, message
):
    created = api.post(
        "/api/v1/features", {"key": "api_calls", "name": "API calls", "type": "metered"}, key=tenant_a.key
    )
    assert created.status_code == 201, created.json()
    before = api.get("/api/v1/products/pro", key=tenant_a.key).json()["features"]
    answer = api.patch("/api/v1/products/pro", {"features": {"api_calls": value}}, key=tenant_a.key)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_feature_value", "features.api_calls")
    assert error["message"] == f"features.api_calls: {message}"
    assert api.get("/api/v1/products/pro", key=tenant_a.key).json()["features"] == before


def test_windows_are_shown_in_the_products_api_and_the_public_plans(api, tenant_a, catalog):
    api.post(
        "/api/v1/features", {"key": "api_calls", "name": "API calls", "type": "metered"}, key=tenant_a.key
    )
    value = {"limit": 100_000, "windows": {"day": 5000, "minute": 100}}
    answer = api.patch("/api/v1/products/pro", {"features": {"api_calls": value}}, key=tenant_a.key)
    assert answer.status_code == 200, answer.json()
    shaped = {"limit": 100_000, "windows": {"minute": 100, "day": 5000}}
    assert answer.json()["features"]["api_calls"] == shaped
    assert list(answer.json()["features"]["api_calls"]["windows"]) == ["minute", "day"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_consumers_fill_the_minute_window_exactly(tenant_a):
    p = tenant_a.project
    calls = feature(p, "api_calls", Feature.Type.METERED)
    subscribe(
        customer(p, "hot"), product(p, "pro", {calls: {"limit": 1000, "windows": {"minute": 7, "day": 20}}})
    )
    # Far from a minute's end, so that every consume counts in one window.
    left = window_bounds("minute", time.time())[1] - time.time()
    if left < 15:
        time.sleep(left + 0.1)
    results = _concurrently(
        50,
        lambda i, client: _post(
            client,
            tenant_a.key,
            CONSUME,
            {"id": f"t{i}", "customer": "hot", "feature": "api_calls", "quantity": 1},
        ),
    )
    assert sum(r["allowed"] for r in results) == 7
    assert {r["binding"] for r in results if not r["allowed"]} == {"minute"}
    assert UsageCounter.objects.get().used == 7
    assert UsageWindowCounter.objects.get(span="minute").used == 7
    assert UsageWindowCounter.objects.get(span="day").used == 7
    assert UsageEvent.objects.filter(kind="consume").count() == 7


def _reached():
    return [
        (e.data["object"]["window"], e.data["object"]["used"], e.data["object"]["window_start"])
        for e in Event.objects.filter(type="usage.window_reached").order_by("sequence")
    ]


def test_each_window_filled_is_announced_once(api, tenant_a, windowed):
    with time_machine.travel(START, tick=False):
        for i in range(6):
            consume(api, tenant_a, f"c{i}")
        consume(api, tenant_a, "c0")  # a retry of a use counts nothing and announces nothing
    assert _reached() == [("minute", 5, "2026-11-25T10:00:00Z")]
    event = Event.objects.get(type="usage.window_reached")
    assert event.data["object"] == {
        "customer": "u1",
        "feature": "api_calls",
        "window": "minute",
        "limit": 5,
        "used": 5,
        "window_start": "2026-11-25T10:00:00Z",
        "resets_at": "2026-11-25T10:01:00Z",
    }
    with time_machine.travel(START + timedelta(seconds=40), tick=False):
        # Recorded usage is never refused: it fills the hour (8) and the new minute's 5 in one batch.
        events = [{"id": f"u{i}", "customer": "u1", "feature": "api_calls", "quantity": 3} for i in range(2)]
        assert api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key).status_code == 200
        consume(api, tenant_a, "late")  # refused: nothing announced again
    assert _reached() == [
        ("minute", 5, "2026-11-25T10:00:00Z"),
        ("minute", 6, "2026-11-25T10:01:00Z"),
        ("hour", 11, "2026-11-25T10:00:00Z"),
    ]


def test_as_of_answers_the_window_current_then_from_what_was_recorded_by_then(api, tenant_a, windowed):
    with time_machine.travel(START, tick=False):
        for i in range(5):
            consume(api, tenant_a, f"c{i}")
    with time_machine.travel(START + timedelta(seconds=50), tick=False):
        api.post(
            HOLDS, {"id": "job", "customer": "u1", "feature": "api_calls", "quantity": 2}, key=tenant_a.key
        )
    with time_machine.travel(START + timedelta(minutes=5), tick=False):
        then = (START + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
        past = api.get(
            f"/api/v1/entitlements/check?customer=u1&feature=api_calls&as_of={then}", key=tenant_a.key
        ).json()
        assert (past["allowed"], past["binding"], past["retry_after"]) == (False, "minute", 10)
        assert _windows(past) == [
            ("minute", 5, 0, 0, "2026-11-25T10:01:00Z"),
            ("hour", 5, 0, 3, "2026-11-25T11:00:00Z"),
        ]
        later = (START + timedelta(seconds=55)).isoformat().replace("+00:00", "Z")
        answer = api.get(
            f"/api/v1/entitlements/check?customer=u1&feature=api_calls&as_of={later}", key=tenant_a.key
        ).json()
        assert _windows(answer)[0][1:3] == (0, 2)  # the next minute: only the hold placed in it
        assert _windows(answer)[1][1:3] == (5, 2)


def test_as_of_before_a_correction_answers_the_window_as_it_was(api, tenant_a, windowed):
    """A use amended later counts in an earlier instant's window what it counted then: the minute was full at
    +20 s (5 of 5), though c0 was voided at +30 s; now, in the same minute, it counts 4."""
    with time_machine.travel(START, tick=False):
        for i in range(5):
            consume(api, tenant_a, f"c{i}")
    with time_machine.travel(START + timedelta(seconds=30), tick=False):
        body = {"id": "fix-c0", "event": "c0", "action": "void", "reason": "a retry loop"}
        assert api.post("/api/v1/usage/corrections", body, key=tenant_a.key).status_code == 201
        then = (START + timedelta(seconds=20)).isoformat().replace("+00:00", "Z")
        past = api.get(
            f"/api/v1/entitlements/check?customer=u1&feature=api_calls&as_of={then}", key=tenant_a.key
        ).json()
        assert (past["allowed"], past["binding"], past["used"]) == (False, "minute", 5)
        assert _windows(past) == [
            ("minute", 5, 0, 0, "2026-11-25T10:01:00Z"),
            ("hour", 5, 0, 3, "2026-11-25T11:00:00Z"),
        ]
        now = api.get("/api/v1/entitlements/check?customer=u1&feature=api_calls", key=tenant_a.key).json()
        assert (now["allowed"], now["used"], _windows(now)[0][1]) == (True, 4, 4)


def test_the_explain_page_says_which_window_refuses_and_when_it_frees_up(api, tenant_a, windowed):
    with time_machine.travel(START, tick=False):
        api.post(
            HOLDS, {"id": "job", "customer": "u1", "feature": "api_calls", "quantity": 1}, key=tenant_a.key
        )
        for i in range(4):
            consume(api, tenant_a, f"c{i}")
        explained = entitlements_explain(project=tenant_a.project, customer=customer(tenant_a.project, "u1"))
        calls = next(f for f in explained.features if f.key == "api_calls")
        assert calls.verdict == (
            "Not allowed: the minute's window is used up (4 of 5, 1 held; frees up in 40 s, at "
            "2026-11-25T10:01:00Z). Windows: 4 of 5, 1 held this minute, 4 of 8, 1 held this hour."
        )
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        explained = entitlements_explain(project=tenant_a.project, customer=customer(tenant_a.project, "u1"))
        calls = next(f for f in explained.features if f.key == "api_calls")
        assert calls.verdict == (
            "Allowed: 4 of 1000 used this period, 1 held. Windows: 0 of 5 this minute, 4 of 8, 1 held this hour."
        )
