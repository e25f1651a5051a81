"""A hold's idempotent retry once the hold is past its expiry."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from catalog.models import Feature
from entitlements.models import EntityCounter, Hold, UsageCounter, UsageWindowCounter
from tests.entitlements.helpers import customer, feature, product, subscribe

HOLDS = "/api/v1/entitlements/holds"
ENTITIES = "/api/v1/entitlements/entities"
START = datetime(2026, 11, 25, 10, 0, 20, tzinfo=UTC)


@pytest.fixture
def plan(tenant_a):
    p = tenant_a.project
    seats = feature(p, "seats", Feature.Type.ALLOCATION)
    summaries = feature(p, "summaries", Feature.Type.METERED)
    value = {"limit": 10, "windows": {"minute": 5, "hour": 8}, "per_entity": {"feature": "seats", "limit": 4}}
    with time_machine.travel(START, tick=False):
        subscribe(customer(p, "u1"), product(p, "team", {seats: 3, summaries: value}))
    return summaries


def test_a_retried_hold_past_its_expiry_answers_it_expired_with_its_units_given_back(api, tenant_a, plan):
    """A hold of 4 naming entity "ana" (windows minute 5, hour 8) expires after 5 s; 5 s later, before the sweep,
    the client retries the same placement (a lost answer). A hold past `expires_at` is over, and every other way of
    reaching it (GET, confirm, release) ends it first. The retry's answer must say `status: "expired"` and its
    entitlement must show nothing held (account `held` 0, windows held 0, the entity's use 0), the counters given
    back (it answered the stored row as it was: `status: "active"` with 4 units still held, while a confirm
    would have been refused as `hold_expired`)."""
    key = tenant_a.key
    body = {
        "id": "h1",
        "customer": "u1",
        "feature": "summaries",
        "quantity": 4,
        "entity": "ana",
        "expires_in": 5,
    }
    with time_machine.travel(START, tick=False) as clock:
        assert (
            api.post(ENTITIES, {"customer": "u1", "feature": "seats", "entity": "ana"}, key=key).status_code
            == 201
        )
        assert api.post(HOLDS, body, key=key).json()["allowed"] is True
        clock.shift(timedelta(seconds=10))
        retried = api.post(HOLDS, body, key=key)
        assert retried.status_code == 200, retried.json()
        answer = retried.json()
        assert answer["duplicate"] is True
        assert answer["hold"]["status"] == "expired"
        assert answer["entitlement"]["held"] == 0
        assert [(w["window"], w["used"], w["held"]) for w in answer["entitlement"]["windows"]] == [
            ("minute", 0, 0),
            ("hour", 0, 0),
        ]
        assert answer["entitlement"]["entity"]["used"] == 0
    assert Hold.objects.get().status == "expired"
    assert UsageCounter.objects.values_list("used", "held").get() == (0, 0)
    assert sorted(UsageWindowCounter.objects.values_list("span", "used", "held")) == [
        ("hour", 0, 0),
        ("minute", 0, 0),
    ]
    assert EntityCounter.objects.get(entity="ana").used == 0
