"""Entities under retries, plan changes and the allocation's other writes (issue #51 point 5): a use recorded
before its entity was removed is retried as a duplicate, not refused; an id names one entity; a hold naming an
entity ends after its plan dropped the limit per entity; `release` never frees a unit a live entity holds; the
tenant's properties never pass for Tollgate's marks in `as_of`."""

from typing import Any

import pytest
from django.utils import timezone

from core.serializers import api_time
from entitlements.models import AllocationCounter, Entity, EntityCounter, Hold, UsageCounter, UsageEvent
from tests.entitlements.test_entities import CONSUME, ENTITIES, HOLDS, _team_plan, add, check, consume, hold

USAGE = "/api/v1/usage"


@pytest.fixture
def team(tenant_a):
    return _team_plan(tenant_a)


def _remove(api, tenant, made: dict[str, Any]) -> None:
    assert api.delete(f"{ENTITIES}/{made['id']}", {}, key=tenant.key).status_code == 200


def _as_of_now(api, tenant, entity: str) -> dict[str, Any]:
    url = (
        f"/api/v1/entitlements/check?customer=u1&feature=summaries&quantity=1&entity={entity}"
        f"&as_of={api_time(timezone.now())}"
    )
    response = api.get(url, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def test_a_consume_id_names_one_entity(api, tenant_a, team):
    add(api, tenant_a, "ana")
    add(api, tenant_a, "bo")
    consume(api, tenant_a, "e1", 3, entity="ana")
    body = {"id": "e1", "customer": "u1", "feature": "summaries", "quantity": 3, "entity": "bo"}
    again = api.post(CONSUME, body, key=tenant_a.key)
    assert again.status_code == 409, again.json()
    assert again.json()["error"]["code"] == "idempotency_id_reused"
    assert dict(EntityCounter.objects.values_list("entity", "used")) == {"ana": 3}
    assert UsageCounter.objects.get(feature=team["summaries"]).used == 3
    # The same use again is its duplicate, as before.
    same = api.post(CONSUME, {**body, "entity": "ana"}, key=tenant_a.key).json()
    assert (same["duplicate"], same["entity"]["used"]) == (True, 3)


def test_a_consume_retried_after_its_entity_was_removed_is_its_duplicate(api, tenant_a, team):
    made = add(api, tenant_a, "ana")
    consume(api, tenant_a, "e1", 3, entity="ana")
    _remove(api, tenant_a, made)
    body = {"id": "e1", "customer": "u1", "feature": "summaries", "quantity": 3, "entity": "ana"}
    again = api.post(CONSUME, body, key=tenant_a.key)
    assert again.status_code == 200, again.json()
    assert (again.json()["duplicate"], again.json()["entity"]["used"]) == (True, 3)
    assert UsageCounter.objects.get(feature=team["summaries"]).used == 3
    assert EntityCounter.objects.get(entity="ana").used == 3
    # A new use naming the removed entity is still refused, nothing recorded.
    new = api.post(CONSUME, {**body, "id": "e2"}, key=tenant_a.key)
    assert (new.status_code, new.json()["error"]["code"]) == (400, "unknown_entity")
    assert UsageEvent.objects.count() == 1


def test_a_hold_retried_after_its_entity_was_removed_answers_its_hold(api, tenant_a, team):
    made = add(api, tenant_a, "ana")
    hold(api, tenant_a, "h1", 2, "ana")
    _remove(api, tenant_a, made)
    body = {"id": "h1", "customer": "u1", "feature": "summaries", "quantity": 2, "entity": "ana"}
    again = api.post(HOLDS, body, key=tenant_a.key)
    assert again.status_code == 200, again.json()
    assert again.json()["duplicate"] is True
    assert Hold.objects.count() == 1
    assert EntityCounter.objects.get(entity="ana").used == 2
    new = api.post(HOLDS, {**body, "id": "h2"}, key=tenant_a.key)
    assert (new.status_code, new.json()["error"]["code"]) == (400, "unknown_entity")
    assert Hold.objects.count() == 1


def test_usage_retried_after_its_entity_was_removed_is_a_duplicate(api, tenant_a, team):
    made = add(api, tenant_a, "ana")
    body = {"id": "u-1", "customer": "u1", "feature": "summaries", "quantity": 2, "entity": "ana"}
    assert api.post(USAGE, body, key=tenant_a.key).status_code == 201
    _remove(api, tenant_a, made)
    again = api.post(USAGE, body, key=tenant_a.key)
    assert again.status_code == 200, again.json()
    assert UsageCounter.objects.get(feature=team["summaries"]).used == 2
    assert EntityCounter.objects.get(entity="ana").used == 2
    batch = {"events": [body, {**body, "id": "u-2"}]}
    refused = api.post(f"{USAGE}/batch", batch, key=tenant_a.key)
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "events[1].entity")
    assert UsageEvent.objects.count() == 1


def test_properties_entity_is_refused_nothing_recorded(api, tenant_a, team):
    """Tollgate keeps there the entity an event names (`as_of` reads it): a tenant's property of that name would
    pass for it."""
    add(api, tenant_a, "ana")
    body = {
        "id": "u-1",
        "customer": "u1",
        "feature": "summaries",
        "quantity": 3,
        "properties": {"entity": "ana"},
    }
    refused = api.post(USAGE, body, key=tenant_a.key)
    assert refused.status_code == 400, refused.json()
    assert (refused.json()["error"]["code"], refused.json()["error"]["param"]) == (
        "invalid_parameter",
        "properties.entity",
    )
    assert UsageEvent.objects.count() == 0
    assert not UsageCounter.objects.exists()
    assert (
        check(api, tenant_a, "ana", 1)["entity"]["used"]
        == _as_of_now(api, tenant_a, "ana")["entity"]["used"]
        == 0
    )


def test_as_of_reads_a_holds_reports_not_a_tenant_property_named_hold(api, tenant_a, team):
    add(api, tenant_a, "ana")
    hold(api, tenant_a, "h1", 3, "ana")
    body = {
        "id": "u-1",
        "customer": "u1",
        "feature": "summaries",
        "quantity": 2,
        "properties": {"hold": "h1"},
    }
    assert api.post(USAGE, body, key=tenant_a.key).status_code == 201
    live = check(api, tenant_a, "ana", 1)
    then = _as_of_now(api, tenant_a, "ana")
    assert (live["entity"]["used"], then["entity"]["used"]) == (3, 3)
    assert (live["used"], then["used"], live["held"], then["held"]) == (2, 2, 3, 3)


def _drop_per_entity(api, tenant) -> None:
    response = api.patch(
        "/api/v1/products/team", {"features": {"seats": 3, "summaries": {"limit": 10}}}, key=tenant.key
    )
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize(
    ("action", "body", "status", "entity_used"),
    [
        ("release", {}, "released", 0),
        ("confirm", {"quantity": 1}, "confirmed", 1),
        ("usage", {"events": [{"id": "r1", "quantity": 1}]}, "active", 3),
    ],
)
def test_a_hold_naming_an_entity_ends_after_its_plan_dropped_the_limit_per_entity(
    api, tenant_a, team, action, body, status, entity_used
):
    add(api, tenant_a, "ana")
    hold(api, tenant_a, "h1", 3, "ana")
    _drop_per_entity(api, tenant_a)
    ended = api.post(f"{HOLDS}/h1/{action}", body, key=tenant_a.key)
    retried = api.post(f"{HOLDS}/h1/{action}", body, key=tenant_a.key)
    assert (ended.status_code, retried.status_code) == (200, 200), ended.content[:300]
    assert "entity" not in ended.json()["entitlement"]
    assert (Hold.objects.get(hold_id="h1").status, EntityCounter.objects.get(entity="ana").used) == (
        status,
        entity_used,
    )


def test_release_never_frees_a_unit_a_live_entity_holds(api, tenant_a, team):
    """Three seats, three live entities: releasing a seat is refused, nothing changed, so no fourth entity fits;
    removing an entity gives its unit back."""
    made = [add(api, tenant_a, name) for name in ("a", "b", "c")]
    body = {"id": "r1", "customer": "u1", "feature": "seats", "quantity": 1}
    released = api.post("/api/v1/entitlements/release", body, key=tenant_a.key)
    assert released.status_code == 400, released.json()
    assert released.json()["error"]["code"] == "release_exceeds_allocation"
    assert "3 of the customer's 3 units" in released.json()["error"]["message"]
    assert AllocationCounter.objects.get(feature=team["seats"]).in_use == 3
    assert not UsageEvent.objects.filter(event_id="r1").exists()
    fourth = api.post(ENTITIES, {"customer": "u1", "feature": "seats", "entity": "d"}, key=tenant_a.key)
    assert fourth.status_code == 409
    assert Entity.objects.filter(removed_at__isnull=True).count() == 3
    _remove(api, tenant_a, made[0])
    assert AllocationCounter.objects.get(feature=team["seats"]).in_use == 2
