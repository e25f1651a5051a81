"""An entity's own usage windows (issue #51 points 2 and 5): a limit per entity may carry windows of its own
(`"per_entity": {"feature": "seats", "limit": 40, "windows": {"minute": 3, "day": 5}}`), so each seat may use 3 a
minute and 5 a day beside the account's limits. A use naming the entity is refused by the window of its own that
is full (`binding` "entity", `entity.binding` the window, `retry_after` when it frees up), recorded nothing; holds
take from them and give back; recorded usage counts in them; each is announced once when reached; `as_of`
answers them as they were."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from catalog.models import Feature, Product
from entitlements.explain import entitlements_explain
from entitlements.models import EntityCounter, EntityWindowCounter, Hold, UsageCounter, UsageEvent
from events.models import Event
from tests.entitlements.helpers import customer, feature, product, subscribe
from tests.entitlements.test_entities import add, check, consume, hold

# A Wednesday, 10:00:20 UTC: 40 s left in its minute; its day ends at 2026-11-26T00:00:00Z.
START = datetime(2026, 11, 25, 10, 0, 20, tzinfo=UTC)
PER_SEAT = {"feature": "seats", "limit": 40, "windows": {"minute": 3, "day": 5}}


@pytest.fixture
def seated(tenant_a):
    """u1 on a team plan: 3 seats; `summaries` 100 a month for the account, each seat 40 a month, 3 a minute and
    5 a day; seats ana and bo added."""
    project = tenant_a.project
    seats = feature(project, "seats", Feature.Type.ALLOCATION)
    summaries = feature(project, "summaries", Feature.Type.METERED)
    with time_machine.travel(START, tick=False):
        subscribe(
            customer(project, "u1"),
            product(project, "team", {seats: 3, summaries: {"limit": 100, "per_entity": PER_SEAT}}),
        )
    return summaries


def _entity_windows(answer):
    return [
        (w["window"], w["used"], w["held"], w["remaining"], w["resets_at"])
        for w in answer["entity"]["windows"]
    ]


def _at(moment):
    return time_machine.travel(moment, tick=False)


def test_an_entitys_own_minute_refuses_its_fourth_use_and_no_other_entitys(api, tenant_a, seated):
    with _at(START):
        add(api, tenant_a, "ana")
        add(api, tenant_a, "bo")
        answers = [consume(api, tenant_a, f"a{i}", entity="ana") for i in range(3)]
        assert [a["allowed"] for a in answers] == [True] * 3
        assert _entity_windows(answers[-1]) == [
            ("minute", 3, 0, 0, "2026-11-25T10:01:00Z"),
            ("day", 3, 0, 2, "2026-11-26T00:00:00Z"),
        ]
        refused = consume(api, tenant_a, "a3", entity="ana")
        assert (refused["allowed"], refused["binding"], refused["retry_after"], refused["step"]) == (
            False,
            "entity",
            40,
            None,
        )
        assert (refused["entity"]["binding"], refused["entity"]["used"], refused["remaining"]) == (
            "minute",
            3,
            97,
        )
        assert not UsageEvent.objects.filter(event_id="a3").exists()  # refused: nothing recorded
        assert UsageCounter.objects.get(feature=seated).used == 3
        assert EntityCounter.objects.get(entity="ana").used == 3
        assert EntityWindowCounter.objects.get(entity="ana", span="minute").used == 3
        other = consume(api, tenant_a, "b0", entity="bo")
        assert (other["allowed"], other["entity"]["binding"], other["used"]) == (True, None, 4)
        account = consume(api, tenant_a, "u0")  # the account itself has no windows
        assert (account["allowed"], account["used"]) == (True, 5)
    with _at(START + timedelta(seconds=60)):  # the next minute frees ana's minute; her day has 2 left
        assert [consume(api, tenant_a, f"a{i}", entity="ana")["allowed"] for i in (4, 5, 6)] == [
            True,
            True,
            False,
        ]
        day = check(api, tenant_a, "ana", 1)
        # 10:01:20 → midnight: 13 h 58 min 40 s
        assert (day["allowed"], day["binding"], day["retry_after"], day["entity"]["binding"]) == (
            False,
            "entity",
            50_320,
            "day",
        )
        assert _entity_windows(day) == [
            ("minute", 2, 0, 1, "2026-11-25T10:02:00Z"),
            ("day", 5, 0, 0, "2026-11-26T00:00:00Z"),
        ]
        never = check(api, tenant_a, "ana", 6)  # more than her day ever allows
        assert (never["allowed"], never["binding"], never["retry_after"]) == (False, "entity", None)
    assert EntityCounter.objects.get(entity="ana").used == 5
    assert UsageEvent.objects.filter(properties__entity="ana").count() == 5


def test_each_window_of_an_entity_is_announced_once_naming_it(api, tenant_a, seated):
    with _at(START):
        add(api, tenant_a, "ana")
        for i in range(4):  # the third fills her minute; the fourth is refused
            consume(api, tenant_a, f"a{i}", entity="ana")
    with _at(START + timedelta(seconds=60)):
        for i in range(4, 7):  # the fifth of the day fills her day
            consume(api, tenant_a, f"a{i}", entity="ana")
    announced = [
        (e.data["object"]["window"], e.data["object"]["entity"], e.data["object"]["used"])
        for e in Event.objects.filter(type="usage.window_reached").order_by("sequence")
    ]
    assert announced == [("minute", "ana", 3), ("day", "ana", 5)]
    first = Event.objects.filter(type="usage.window_reached").order_by("sequence").first()
    assert first is not None
    assert first.data["object"] == {
        "customer": "u1",
        "feature": "summaries",
        "window": "minute",
        "limit": 3,
        "used": 3,
        "window_start": "2026-11-25T10:00:00Z",
        "resets_at": "2026-11-25T10:01:00Z",
        "entity": "ana",
    }


def test_a_hold_takes_from_the_entitys_windows_and_its_release_gives_them_back(api, tenant_a, seated):
    with _at(START):
        add(api, tenant_a, "ana")
        placed = hold(api, tenant_a, "h1", 2, "ana")
        assert placed["allowed"] is True
        assert _entity_windows(placed["entitlement"])[0] == ("minute", 0, 2, 1, "2026-11-25T10:01:00Z")
        assert Hold.objects.get(hold_id="h1").entity_windows == {
            "minute": START.replace(second=0).timestamp(),
            "day": START.replace(hour=0, minute=0, second=0).timestamp(),
        }
        refused = consume(api, tenant_a, "a0", 2, entity="ana")
        assert (refused["allowed"], refused["entity"]["binding"]) == (False, "minute")
        assert api.post("/api/v1/entitlements/holds/h1/release", {}, key=tenant_a.key).status_code == 200
        assert list(EntityWindowCounter.objects.order_by("span").values_list("span", "used", "held")) == [
            ("day", 0, 0),
            ("minute", 0, 0),
        ]
        assert consume(api, tenant_a, "a1", 3, entity="ana")["allowed"] is True


def test_a_hold_refused_by_an_entitys_window_takes_nothing(api, tenant_a, seated):
    with _at(START):
        add(api, tenant_a, "ana")
        refused = hold(api, tenant_a, "h1", 4, "ana")
        assert (refused["allowed"], refused["entitlement"]["binding"]) == (False, "entity")
        assert not Hold.objects.filter(status="active").exists()
        assert not UsageCounter.objects.filter(used__gt=0).exists()
        assert EntityCounter.objects.filter(used__gt=0).count() == 0
        assert EntityWindowCounter.objects.filter(used__gt=0).count() == 0


def test_recorded_usage_naming_an_entity_counts_in_its_windows(api, tenant_a, seated):
    with _at(START):
        add(api, tenant_a, "ana")
        body = {"id": "r1", "customer": "u1", "feature": "summaries", "quantity": 4, "entity": "ana"}
        assert api.post("/api/v1/usage", body, key=tenant_a.key).status_code == 201  # never refused
        assert api.post("/api/v1/usage", body, key=tenant_a.key).status_code == 200  # counted once
        answer = check(api, tenant_a, "ana", 1)
        assert (answer["allowed"], answer["entity"]["binding"]) == (False, "minute")
        assert _entity_windows(answer) == [
            ("minute", 4, 0, 0, "2026-11-25T10:01:00Z"),
            ("day", 4, 0, 1, "2026-11-26T00:00:00Z"),
        ]
    assert [e.data["object"]["window"] for e in Event.objects.filter(type="usage.window_reached")] == [
        "minute"
    ]


def test_as_of_answers_an_entitys_windows_as_they_were(api, tenant_a, seated):
    with _at(START):
        add(api, tenant_a, "ana")
        for i in range(3):
            consume(api, tenant_a, f"a{i}", entity="ana")
    with _at(START + timedelta(seconds=30)):
        live = check(api, tenant_a, "ana", 1)
    with _at(START + timedelta(minutes=5)):
        then = (START + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
        url = f"/api/v1/entitlements/check?customer=u1&feature=summaries&entity=ana&quantity=1&as_of={then}"
        past = api.get(url, key=tenant_a.key).json()
        assert past["entity"] == live["entity"]
        assert (past["allowed"], past["binding"], past["retry_after"]) == (False, "entity", 10)
        now = check(api, tenant_a, "ana", 1)
        assert (now["allowed"], _entity_windows(now)[0]) == (
            True,
            ("minute", 0, 0, 3, "2026-11-25T10:06:00Z"),
        )


def test_the_explain_page_says_each_entitys_windows(tenant_a, seated):
    with _at(START):
        explained = entitlements_explain(project=tenant_a.project, customer=customer(tenant_a.project, "u1"))
    verdict = next(f.verdict for f in explained.features if f.key == "summaries")
    assert verdict == (
        "Allowed: 0 of 100 used this period. Each of the customer's seats may use 40 a period, 3 a minute, 5 a "
        "day; the customer has none yet."
    )


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        ({"minute": 10, "hour": 5}, "contradictory windows: 10 a minute is more than the 5 a hour allows."),
        ({"day": 50}, "contradictory windows: 50 a day is more than the period's limit of 40."),
        ({"month": 5}, "unknown window 'month'; windows are minute, hour, day and week."),
    ],
)
def test_contradictory_entity_windows_are_refused_and_nothing_is_created(
    api, tenant_a, seated, windows, message
):
    body = {
        "key": "bad",
        "name": "Bad",
        "features": {
            "summaries": {"limit": 100, "per_entity": {"feature": "seats", "limit": 40, "windows": windows}}
        },
    }
    response = api.post("/api/v1/products", body, key=tenant_a.key)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (
        "invalid_feature_value",
        "features.summaries.per_entity.windows",
    )
    assert message in error["message"]
    assert not Product.objects.filter(key="bad").exists()


def test_a_products_entity_windows_are_answered_as_declared(api, tenant_a, seated):
    body = {
        "key": "crew",
        "name": "Crew",
        "features": {
            "summaries": {
                "limit": 100,
                "per_entity": {"feature": "seats", "limit": 40, "windows": {"day": 5, "minute": 3}},
            }
        },
    }
    response = api.post("/api/v1/products", body, key=tenant_a.key)
    assert response.status_code == 201, response.json()
    assert response.json()["features"]["summaries"]["per_entity"] == PER_SEAT


def test_the_entities_list_says_each_ones_windows(api, tenant_a, seated):
    with _at(START):
        add(api, tenant_a, "ana")
        add(api, tenant_a, "bo")
        consume(api, tenant_a, "a0", 2, entity="ana")
        listed = api.get("/api/v1/entitlements/entities?customer=u1", key=tenant_a.key).json()["data"]
    usage = {row["entity"]: row["usage"][0] for row in listed}
    assert usage["ana"]["windows"] == [
        {
            "window": "minute",
            "limit": 3,
            "used": 2,
            "held": 0,
            "remaining": 1,
            "resets_at": "2026-11-25T10:01:00Z",
        },
        {
            "window": "day",
            "limit": 5,
            "used": 2,
            "held": 0,
            "remaining": 3,
            "resets_at": "2026-11-26T00:00:00Z",
        },
    ]
    assert [w["used"] for w in usage["bo"]["windows"]] == [0, 0]


def test_as_of_before_a_correction_answers_an_entitys_use_and_windows_as_they_were(api, tenant_a, seated):
    """A correction made later does not rewrite what an instant before it knew: ana's minute was full then (3 of
    3), her month at 3, however the first use was amended since; now her windows and month count the amendment."""
    with _at(START):
        add(api, tenant_a, "ana")
        for i in range(3):
            consume(api, tenant_a, f"a{i}", entity="ana")
    with _at(START + timedelta(seconds=10)):
        live = check(api, tenant_a, "ana", 1)
    assert (live["allowed"], live["entity"]["used"], _entity_windows(live)[0][:2]) == (
        False,
        3,
        ("minute", 3),
    )
    with _at(START + timedelta(seconds=20)):
        body = {"id": "fix-a0", "event": "a0", "action": "void", "reason": "a retry loop"}
        assert api.post("/api/v1/usage/corrections", body, key=tenant_a.key).status_code == 201
        then = (START + timedelta(seconds=10)).isoformat().replace("+00:00", "Z")
        url = f"/api/v1/entitlements/check?customer=u1&feature=summaries&entity=ana&quantity=1&as_of={then}"
        past = api.get(url, key=tenant_a.key).json()
        assert past["entity"] == live["entity"]
        assert (past["allowed"], past["binding"]) == (False, "entity")
        now = check(api, tenant_a, "ana", 1)
        assert (now["allowed"], now["entity"]["used"], _entity_windows(now)) == (
            True,
            2,
            [("minute", 2, 0, 1, "2026-11-25T10:01:00Z"), ("day", 2, 0, 3, "2026-11-26T00:00:00Z")],
        )
