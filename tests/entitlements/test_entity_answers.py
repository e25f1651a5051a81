"""Answers naming an entity beside the account's own refusals (issue #51 points 2 and 5): where both refuse, the
answer waits for the one that frees up last; a hold naming none answers no entity; a revoked feature refuses a
use naming an entity as it refuses any."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from catalog.models import Feature
from entitlements.models import UsageEvent
from tests.entitlements.helpers import customer, feature, product, subscribe
from tests.entitlements.test_entities import HOLDS, add, check, consume

START = datetime(
    2026, 11, 25, 10, 0, 20, tzinfo=UTC
)  # 40 s left in its minute; its day ends in 13 h 59 min 40 s


def _at(moment):
    return time_machine.travel(moment, tick=False)


@pytest.fixture
def both(tenant_a):
    """The account: 100 a month, at most 3 a minute; each seat 40 a month, at most 5 a day."""
    project = tenant_a.project
    seats = feature(project, "seats", Feature.Type.ALLOCATION)
    summaries = feature(project, "summaries", Feature.Type.METERED)
    value = {
        "limit": 100,
        "windows": {"minute": 3},
        "per_entity": {"feature": "seats", "limit": 40, "windows": {"day": 5}},
    }
    with _at(START):
        subscribe(customer(project, "u1"), product(project, "team", {seats: 3, summaries: value}))
    return summaries


def test_retry_after_when_account_minute_and_entity_day_both_refuse(api, tenant_a, both):
    """The account's minute is full (frees in 40 s) and ana's own day too (frees at midnight): the check and the
    consume naming ana are refused until midnight, `binding` "entity" (retrying in 40 s would be refused again);
    nothing is recorded."""
    with _at(START - timedelta(minutes=2)):
        add(api, tenant_a, "ana")
        add(api, tenant_a, "bo")
        assert consume(api, tenant_a, "a0", 3, entity="ana")["allowed"] is True
    with _at(START - timedelta(minutes=1)):
        assert consume(api, tenant_a, "a1", 2, entity="ana")["allowed"] is True  # ana's day: 5 of 5
    with _at(START):
        assert consume(api, tenant_a, "b0", 3, entity="bo")["allowed"] is True  # the account's minute: 3 of 3
        answer = check(api, tenant_a, "ana", 1)
        # The account frees up in 40 s, ana's day at midnight (50,380 s): retrying in 40 s is refused again.
        assert (answer["allowed"], answer["binding"], answer["entity"]["binding"]) == (False, "entity", "day")
        assert answer["retry_after"] == 50_380
        refused = consume(api, tenant_a, "a2", 1, entity="ana")
        assert (refused["allowed"], refused["retry_after"]) == (False, 50_380)
        assert not UsageEvent.objects.filter(event_id="a2").exists()


def test_a_hold_naming_no_entity_answers_no_entity(api, tenant_a, both):
    """A hold that names no entity, of a feature with a limit per entity: placed, read and released, its answer
    carries no `entity` (it answered one with an empty id)."""
    with _at(START):
        add(api, tenant_a, "ana")
        body = {"id": "h0", "customer": "u1", "feature": "summaries", "quantity": 2}
        placed = api.post(HOLDS, body, key=tenant_a.key).json()
        assert placed["allowed"] is True
        assert "entity" not in placed["entitlement"], placed["entitlement"].get("entity")
        read = api.get(f"{HOLDS}/h0", key=tenant_a.key).json()
        assert "entity" not in read["entitlement"]
        released = api.post(f"{HOLDS}/h0/release", {}, key=tenant_a.key).json()
        assert "entity" not in released["entitlement"]


def test_a_check_naming_an_entity_of_a_revoked_feature_is_refused_not_400(api, tenant_a, both):
    """The feature revoked for the customer: a check and a consume naming ana are refused (200, `allowed` false,
    nothing recorded), not `400 entity_not_counted` (its plan does give each seat a limit)."""
    with _at(START):
        add(api, tenant_a, "ana")
        body = {"customer": "u1", "feature": "summaries", "reason": "abuse"}
        assert api.post("/api/v1/entitlements/revocations", body, key=tenant_a.key).status_code == 201
        url = "/api/v1/entitlements/check?customer=u1&feature=summaries&quantity=1&entity=ana"
        response = api.get(url, key=tenant_a.key)
        assert response.status_code == 200, response.json()
        assert response.json()["allowed"] is False
        refused = api.post(
            "/api/v1/entitlements/consume",
            {"id": "a0", "customer": "u1", "feature": "summaries", "quantity": 1, "entity": "ana"},
            key=tenant_a.key,
        )
        assert refused.status_code == 200, refused.json()
        assert refused.json()["allowed"] is False
        assert not UsageEvent.objects.filter(event_id="a0").exists()
