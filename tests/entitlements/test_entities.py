"""A customer's entities (issue #51 point 5): seats or workspaces by the tenant's own ids, each counted by an
allocation feature, each with its own limit a period on a metered feature whose plan says so (`per_entity`),
beside the account's ("50 summaries a seat a month, 2,000 for the account"). Adding takes a unit of the
allocation feature, removing gives it back; checks and consumes name the entity; concurrent uses never pass
either limit."""

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from catalog.models import Feature
from core.models import AuditLogEntry
from core.serializers import api_time
from entitlements.models import AllocationCounter, Entity, EntityCounter, Hold, UsageCounter, UsageEvent
from entitlements.tasks import holds_expire_sweep
from tests.entitlements.helpers import customer, feature, product, subscribe
from tests.entitlements.test_consume import _concurrently, _post

ENTITIES = "/api/v1/entitlements/entities"
CONSUME = "/api/v1/entitlements/consume"
HOUR = timedelta(hours=1)


@pytest.fixture
def team(tenant_a):
    """u1 on a team plan: 3 seats; `summaries` 10 a month for the account, 4 a seat."""
    return _team_plan(tenant_a)


def _team_plan(tenant_a):
    project = tenant_a.project
    seats = feature(project, "seats", Feature.Type.ALLOCATION)
    summaries = feature(project, "summaries", Feature.Type.METERED)
    values = {seats: 3, summaries: {"limit": 10, "per_entity": {"feature": "seats", "limit": 4}}}
    subscribe(customer(project, "u1"), product(project, "team", values))
    return {"seats": seats, "summaries": summaries}


def add(api, tenant, entity, customer="u1", feature="seats", name="", status=201):
    body = {"customer": customer, "feature": feature, "entity": entity, "name": name}
    response = api.post(ENTITIES, body, key=tenant.key)
    assert response.status_code == status, response.json()
    return response.json()


def consume(api, tenant, event_id, quantity=1, entity=None, customer="u1", status=200):
    body: dict[str, Any] = {
        "id": event_id,
        "customer": customer,
        "feature": "summaries",
        "quantity": quantity,
    }
    if entity is not None:
        body["entity"] = entity
    response = api.post(CONSUME, body, key=tenant.key)
    assert response.status_code == status, response.json()
    return response.json()


def check(api, tenant, entity, quantity=1, customer="u1", status=200):
    url = f"/api/v1/entitlements/check?customer={customer}&feature=summaries&quantity={quantity}&entity={entity}"
    response = api.get(url, key=tenant.key)
    assert response.status_code == status, response.json()
    return response.json()


def test_an_entity_takes_a_unit_of_its_allocation_feature_and_gives_it_back_when_removed(api, tenant_a, team):
    made = add(api, tenant_a, "seat-ana", name="Ana")
    assert {k: made[k] for k in ("object", "customer", "feature", "entity", "name", "removed_at")} == {
        "object": "entity",
        "customer": "u1",
        "feature": "seats",
        "entity": "seat-ana",
        "name": "Ana",
        "removed_at": None,
    }
    assert made["id"].startswith("ent_")
    again = add(api, tenant_a, "seat-ana", name="Someone else", status=200)  # the same id: as it is
    assert (again["id"], again["name"]) == (made["id"], "Ana")
    assert AllocationCounter.objects.get(feature=team["seats"]).in_use == 1
    seats = api.get("/api/v1/entitlements/check?customer=u1&feature=seats", key=tenant_a.key).json()
    assert (seats["used"], seats["remaining"]) == (1, 2)

    renamed = api.patch(f"{ENTITIES}/{made['id']}", {"name": "Ana P."}, key=tenant_a.key)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Ana P."
    removed = api.delete(f"{ENTITIES}/{made['id']}", {"reason": "left the team"}, key=tenant_a.key)
    assert removed.status_code == 200
    assert removed.json()["removed_at"] is not None
    assert AllocationCounter.objects.get(feature=team["seats"]).in_use == 0
    again = api.delete(f"{ENTITIES}/{made['id']}", {}, key=tenant_a.key)  # removing again changes nothing
    assert again.status_code == 200
    assert AllocationCounter.objects.get(feature=team["seats"]).in_use == 0
    listed = api.get(f"{ENTITIES}?customer=u1", key=tenant_a.key).json()
    assert listed["data"] == []
    actions = set(AuditLogEntry.objects.filter(target_id=made["id"]).values_list("action", "reason"))
    assert actions == {("entity.added", ""), ("entity.renamed", ""), ("entity.removed", "left the team")}


def test_adding_past_the_plans_seats_is_refused_and_adds_nothing(api, tenant_a, team):
    for name in ("a", "b", "c"):
        add(api, tenant_a, name)
    refused = api.post(ENTITIES, {"customer": "u1", "feature": "seats", "entity": "d"}, key=tenant_a.key)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "allocation_exhausted"
    assert Entity.objects.filter(external_id="d").count() == 0
    assert AllocationCounter.objects.get(feature=team["seats"]).in_use == 3
    listed = api.get(f"{ENTITIES}?customer=u1", key=tenant_a.key).json()
    assert [row["entity"] for row in listed["data"]] == ["a", "b", "c"]


def test_an_entity_is_counted_by_an_allocation_feature_only(api, tenant_a, team):
    response = api.post(ENTITIES, {"customer": "u1", "feature": "summaries", "entity": "x"}, key=tenant_a.key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "feature_not_allocation"
    assert Entity.objects.count() == 0


def test_each_entity_has_its_own_limit_beside_the_accounts(api, tenant_a, team):
    for name in ("ana", "bo", "cy"):
        add(api, tenant_a, name)
    first = consume(api, tenant_a, "e1", 4, entity="ana")
    assert (first["allowed"], first["used"], first["remaining"]) == (True, 4, 6)
    assert first["entity"] == {
        "id": "ana",
        "feature": "seats",
        "limit": 4,
        "used": 4,
        "remaining": 0,
        "windows": [],
        "binding": None,
        "balance": None,
    }
    refused = consume(api, tenant_a, "e2", 1, entity="ana")
    assert (refused["allowed"], refused["binding"], refused["used"]) == (False, "entity", 4)
    assert refused["retry_after"] is not None
    assert refused["retry_after"] > 0
    assert UsageEvent.objects.filter(event_id="e2").count() == 0  # a refusal records nothing
    assert consume(api, tenant_a, "e3", 4, entity="bo")["allowed"] is True
    # The account has 2 left: Cy's 3 do not fit it, whatever Cy's own 4.
    third = consume(api, tenant_a, "e4", 3, entity="cy")
    assert (third["allowed"], third["binding"], third["entity"]["used"]) == (False, "period", 0)
    assert consume(api, tenant_a, "e5", 2, entity="cy")["allowed"] is True
    assert UsageCounter.objects.get(feature=team["summaries"]).used == 10
    counters = dict(EntityCounter.objects.values_list("entity", "used"))
    assert counters == {"ana": 4, "bo": 4, "cy": 2}
    assert UsageEvent.objects.get(event_id="e5").properties == {"entity": "cy"}
    answer = check(api, tenant_a, "cy", 2)
    assert (answer["allowed"], answer["binding"]) == (False, "period")
    assert answer["entity"] == {
        "id": "cy",
        "feature": "seats",
        "limit": 4,
        "used": 2,
        "remaining": 2,
        "windows": [],
        "binding": None,
        "balance": None,
    }


def test_each_entity_says_its_use_of_every_feature_with_a_limit_per_entity(api, tenant_a, team):
    """An entity answers, in every answer of the entities API, its use this period of each metered feature whose
    plan gives the entities of its allocation feature their own limit; a feature that does not is not listed."""
    exports = feature(tenant_a.project, "exports", Feature.Type.METERED)
    notes = feature(tenant_a.project, "notes", Feature.Type.METERED)
    values = {exports: 5, notes: {"limit": 30, "per_entity": {"feature": "seats", "limit": 7}}}
    subscribe(customer(tenant_a.project, "u1"), product(tenant_a.project, "extras", values))
    made = add(api, tenant_a, "ana")
    fresh = [
        {"feature": "notes", "limit": 7, "used": 0, "remaining": 7, "windows": []},
        {"feature": "summaries", "limit": 4, "used": 0, "remaining": 4, "windows": []},
    ]
    assert made["usage"] == fresh
    add(api, tenant_a, "bo")
    consume(api, tenant_a, "e1", 3, entity="ana")
    body = {"id": "n1", "customer": "u1", "feature": "notes", "quantity": 7, "entity": "bo"}
    assert api.post(CONSUME, body, key=tenant_a.key).json()["allowed"] is True
    listed = api.get(f"{ENTITIES}?customer=u1", key=tenant_a.key).json()["data"]
    assert {row["entity"]: row["usage"] for row in listed} == {
        "ana": [fresh[0], {"feature": "summaries", "limit": 4, "used": 3, "remaining": 1, "windows": []}],
        "bo": [{"feature": "notes", "limit": 7, "used": 7, "remaining": 0, "windows": []}, fresh[1]],
    }
    removed = api.delete(f"{ENTITIES}/{made['id']}", {}, key=tenant_a.key).json()
    assert removed["usage"][1] == {
        "feature": "summaries",
        "limit": 4,
        "used": 3,
        "remaining": 1,
        "windows": [],
    }


def test_a_duplicate_consume_naming_an_entity_counts_once(api, tenant_a, team):
    add(api, tenant_a, "ana")
    consume(api, tenant_a, "e1", 3, entity="ana")
    again = consume(api, tenant_a, "e1", 3, entity="ana")
    assert (again["duplicate"], again["entity"]["used"], again["used"]) == (True, 3, 3)
    assert EntityCounter.objects.get(entity="ana").used == 3


def test_a_use_without_an_entity_counts_for_the_account_only(api, tenant_a, team):
    add(api, tenant_a, "ana")
    assert consume(api, tenant_a, "e1", 6)["allowed"] is True
    assert check(api, tenant_a, "ana", 4)["allowed"] is True  # the account has 4 left, Ana all her 4
    beyond = check(api, tenant_a, "ana", 5)  # past the account's period and more than Ana's limit ever allows
    assert (beyond["binding"], beyond["retry_after"], beyond["entity"]["binding"]) == (
        "entity",
        None,
        "period",
    )


def test_an_unknown_or_removed_entity_is_refused_and_nothing_is_recorded(api, tenant_a, team):
    made = add(api, tenant_a, "ana")
    for entity in ("nobody", "ana"):
        if entity == "ana":
            api.delete(f"{ENTITIES}/{made['id']}", {}, key=tenant_a.key)
        answer = consume(api, tenant_a, f"x-{entity}", 1, entity=entity, status=400)
        assert (answer["error"]["code"], answer["error"]["param"]) == ("unknown_entity", "entity")
        assert check(api, tenant_a, entity, status=400)["error"]["code"] == "unknown_entity"
    assert UsageEvent.objects.count() == 0
    assert UsageCounter.objects.count() == 0
    # Another customer's entity of the same id is not theirs.
    subscribe(customer(tenant_a.project, "u2"), product(tenant_a.project, "team-2", {team["seats"]: 1}))
    add(api, tenant_a, "bo", customer="u2")
    assert consume(api, tenant_a, "x-bo", 1, entity="bo", status=400)["error"]["code"] == "unknown_entity"


def test_a_feature_without_a_limit_per_entity_takes_no_entity(api, tenant_a, team):
    plain = feature(tenant_a.project, "exports", Feature.Type.METERED)
    subscribe(customer(tenant_a.project, "u1"), product(tenant_a.project, "exports", {plain: 5}))
    add(api, tenant_a, "ana")
    body = {"id": "p1", "customer": "u1", "feature": "exports", "entity": "ana"}
    response = api.post(CONSUME, body, key=tenant_a.key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "entity_not_counted"
    assert UsageEvent.objects.count() == 0


def test_removing_and_adding_a_seat_again_gives_it_no_fresh_allowance(api, tenant_a, team):
    made = add(api, tenant_a, "ana")
    consume(api, tenant_a, "e1", 4, entity="ana")
    api.delete(f"{ENTITIES}/{made['id']}", {}, key=tenant_a.key)
    add(api, tenant_a, "ana")
    answer = consume(api, tenant_a, "e2", 1, entity="ana")
    assert (answer["allowed"], answer["binding"], answer["entity"]["used"]) == (False, "entity", 4)


def test_another_projects_entity_is_not_found(api, tenant_a, tenant_b, team):
    made = add(api, tenant_a, "ana")
    for response in (
        api.patch(f"{ENTITIES}/{made['id']}", {"name": "x"}, key=tenant_b.key),
        api.delete(f"{ENTITIES}/{made['id']}", {}, key=tenant_b.key),
    ):
        assert response.status_code == 404
    entity = Entity.objects.get(pk=made["id"])
    assert (entity.name, entity.removed_at) == ("", None)
    assert AllocationCounter.objects.get(feature=team["seats"]).in_use == 1


def test_per_entity_is_validated_in_the_catalog(api, tenant_a, team):
    body = {
        "key": "bad",
        "name": "Bad",
        "features": {"summaries": {"limit": 5, "per_entity": {"feature": "summaries", "limit": 2}}},
    }
    response = api.post("/api/v1/products", body, key=tenant_a.key)
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "invalid_feature_value"
    assert "not an allocation feature" in response.json()["error"]["message"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_uses_never_pass_an_entitys_limit_nor_the_accounts(tenant_a):
    project = tenant_a.project
    seats = feature(project, "seats", Feature.Type.ALLOCATION)
    summaries = feature(project, "summaries", Feature.Type.METERED)
    values = {seats: 5, summaries: {"limit": 25, "per_entity": {"feature": "seats", "limit": 7}}}
    subscribe(customer(project, "hot"), product(project, "team", values))
    for name in ("s0", "s1", "s2", "s3", "s4"):
        Entity.objects.create(
            id=f"ent_{name}",
            project=project,
            customer=customer(project, "hot"),
            feature=seats,
            external_id=name,
        )
    results = _concurrently(
        50,
        lambda i, client: _post(
            client,
            tenant_a.key,
            CONSUME,
            {"id": f"t{i}", "customer": "hot", "feature": "summaries", "entity": f"s{i % 5}"},
        ),
    )
    assert sum(r["allowed"] for r in results) == 25
    assert UsageCounter.objects.get(feature=summaries).used == 25
    per_entity = dict(EntityCounter.objects.values_list("entity", "used"))
    assert sum(per_entity.values()) == 25
    assert max(per_entity.values()) <= 7
    assert UsageEvent.objects.filter(kind="consume").count() == 25


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_never_pass_the_seats(tenant_a):
    project = tenant_a.project
    seats = feature(project, "seats", Feature.Type.ALLOCATION)
    subscribe(customer(project, "hot"), product(project, "team", {seats: 4}))

    def add_one(i, client):
        response = client.post(
            ENTITIES,
            {"customer": "hot", "feature": "seats", "entity": f"seat-{i % 6}"},
            content_type="application/json",
            headers={"Authorization": f"Bearer {tenant_a.key}"},
        )
        return response.status_code

    codes = _concurrently(24, add_one)
    assert set(codes) <= {200, 201, 409}
    assert codes.count(201) == 4
    assert Entity.objects.filter(removed_at__isnull=True).count() == 4
    assert AllocationCounter.objects.get(feature=seats).in_use == 4


HOLDS = "/api/v1/entitlements/holds"


def hold(api, tenant, hold_id, quantity, entity, status=200):
    body = {"id": hold_id, "customer": "u1", "feature": "summaries", "quantity": quantity, "entity": entity}
    response = api.post(HOLDS, body, key=tenant.key)
    assert response.status_code == status, response.json()
    return response.json()


def test_a_hold_naming_an_entity_takes_and_gives_back_on_both_counters(api, tenant_a, team):
    add(api, tenant_a, "ana")
    placed = hold(api, tenant_a, "h1", 3, "ana")
    assert placed["allowed"] is True
    assert placed["entitlement"]["entity"] == {
        "id": "ana",
        "feature": "seats",
        "limit": 4,
        "used": 3,
        "remaining": 1,
        "windows": [],
        "binding": None,
        "balance": None,
    }
    refused = hold(api, tenant_a, "h2", 2, "ana")
    assert (refused["allowed"], refused["entitlement"]["binding"]) == (False, "entity")
    assert Hold.objects.filter(hold_id="h2").count() == 0
    confirmed = api.post(f"{HOLDS}/h1/confirm", {"quantity": 1}, key=tenant_a.key)
    assert confirmed.status_code == 200, confirmed.json()
    assert EntityCounter.objects.get(entity="ana").used == 1
    assert UsageCounter.objects.get(feature=team["summaries"]).used == 1
    assert UsageEvent.objects.get(event_id=Hold.objects.get(hold_id="h1").pk).properties == {
        "hold": "h1",
        "entity": "ana",
    }
    hold(api, tenant_a, "h3", 3, "ana")
    assert api.post(f"{HOLDS}/h3/release", {}, key=tenant_a.key).status_code == 200
    assert EntityCounter.objects.get(entity="ana").used == 1
    assert UsageCounter.objects.get(feature=team["summaries"]).used == 1


def test_a_hold_id_again_with_another_entity_is_a_conflict(api, tenant_a, team):
    add(api, tenant_a, "ana")
    add(api, tenant_a, "bo")
    hold(api, tenant_a, "h1", 1, "ana")
    again = hold(api, tenant_a, "h1", 1, "bo", status=409)
    assert again["error"]["code"] == "idempotency_id_reused"
    assert dict(EntityCounter.objects.values_list("entity", "used")) == {"ana": 1}


def test_an_expired_hold_gives_an_entitys_units_back(api, tenant_a, team):
    add(api, tenant_a, "ana")
    hold(api, tenant_a, "h1", 4, "ana")
    Hold.objects.filter(hold_id="h1").update(expires_at=timezone.now() - timedelta(seconds=1))
    holds_expire_sweep()
    assert Hold.objects.get(hold_id="h1").status == "expired"
    assert EntityCounter.objects.get(entity="ana").used == 0
    assert consume(api, tenant_a, "e1", 4, entity="ana")["allowed"] is True


def test_recorded_usage_naming_an_entity_counts_for_it_and_is_never_refused(api, tenant_a, team):
    add(api, tenant_a, "ana")
    body = {"id": "u1-1", "customer": "u1", "feature": "summaries", "quantity": 6, "entity": "ana"}
    response = api.post("/api/v1/usage", body, key=tenant_a.key)
    assert response.status_code == 201, response.json()
    assert response.json()["properties"] == {"entity": "ana"}
    assert api.post("/api/v1/usage", body, key=tenant_a.key).status_code == 200  # the same id: counted once
    batch = [
        {"id": "u1-2", "customer": "u1", "feature": "summaries", "quantity": 1, "entity": "ana"},
        {"id": "u1-3", "customer": "u1", "feature": "summaries", "quantity": 1, "entity": "nobody"},
    ]
    refused = api.post("/api/v1/usage/batch", {"events": batch}, key=tenant_a.key)
    assert refused.status_code == 400
    assert (refused.json()["error"]["code"], refused.json()["error"]["param"]) == (
        "unknown_entity",
        "events[1].entity",
    )
    assert EntityCounter.objects.get(entity="ana").used == 6  # all or nothing: the batch recorded nothing
    accepted = api.post("/api/v1/usage/batch", {"events": batch[:1]}, key=tenant_a.key)
    assert accepted.status_code == 200, accepted.json()
    assert EntityCounter.objects.get(entity="ana").used == 7
    assert UsageCounter.objects.get(feature=team["summaries"]).used == 7
    answer = check(api, tenant_a, "ana", 1)
    assert (answer["allowed"], answer["binding"], answer["entity"]["remaining"]) == (False, "entity", 0)


def test_the_explain_page_says_each_entitys_use(api, tenant_a, team):
    from customers.models import Customer
    from entitlements.explain import entitlements_explain

    for name in ("ana", "bo"):
        add(api, tenant_a, name)
    consume(api, tenant_a, "e1", 3, entity="bo")
    consume(api, tenant_a, "e2", 1, entity="ana")
    explained = entitlements_explain(
        project=tenant_a.project, customer=Customer.objects.get(external_id="u1")
    )
    verdict = next(f.verdict for f in explained.features if f.key == "summaries")
    assert (
        verdict
        == "Allowed: 4 of 10 used this period. Each of the customer's seats may use 4 a period: bo 3, ana 1 used."
    )


def test_the_local_snapshot_carries_each_entitys_use(api, tenant_a, team):
    add(api, tenant_a, "ana")
    add(api, tenant_a, "bo")
    consume(api, tenant_a, "e1", 3, entity="ana")
    snapshot = api.get("/api/v1/entitlements/snapshot?customer=u1", key=tenant_a.key).json()
    assert snapshot["features"]["summaries"]["per_entity"] == {
        "feature": "seats",
        "limit": 4,
        "used": {"ana": 3, "bo": 0},
        "windows": {},
    }
    assert snapshot["features"]["seats"]["per_entity"] is None
    assert (snapshot["features"]["seats"]["used"], snapshot["features"]["summaries"]["used"]) == (2, 3)


def test_as_of_answers_an_entitys_use_then(api, tenant_a):
    """Hour −1: u1 subscribes to the team plan. 0: Ana is added. 1: 2 used. 2: 1 held. 3: 1 more used (her 4). 4: she is removed. Asked at each
    half hour, `as_of` answers her use then — held units counted — and refuses her before she was added and after
    she was removed, as the live check does now."""
    start = timezone.now().replace(microsecond=0) - timedelta(hours=5)
    with time_machine.travel(start - HOUR, tick=False) as clock:
        _team_plan(tenant_a)  # the fixture's plan, subscribed to an hour before Ana is added
        clock.shift(HOUR)
        made = add(api, tenant_a, "ana")
        clock.shift(HOUR)
        consume(api, tenant_a, "e1", 2, entity="ana")
        clock.shift(HOUR)
        hold(api, tenant_a, "h1", 1, "ana")
        clock.shift(HOUR)
        consume(api, tenant_a, "e2", 1, entity="ana")
        clock.shift(HOUR)
        assert api.delete(f"{ENTITIES}/{made['id']}", {}, key=tenant_a.key).status_code == 200
    period_end = start - HOUR - timedelta(days=1) + timedelta(days=30)

    def then(moment, quantity=1, status=200):
        url = (
            f"/api/v1/entitlements/check?customer=u1&feature=summaries&quantity={quantity}&entity=ana"
            f"&as_of={api_time(moment)}"
        )
        response = api.get(url, key=tenant_a.key)
        assert response.status_code == status, response.json()
        return response.json()

    half = timedelta(minutes=30)
    before = then(start - half, status=400)["error"]
    assert (before["code"], before["param"]) == ("unknown_entity", "entity")
    assert then(start + half, 4)["entity"] == {
        "id": "ana",
        "feature": "seats",
        "limit": 4,
        "used": 0,
        "remaining": 4,
        "windows": [],
        "binding": None,
        "balance": None,
    }
    used = then(start + HOUR + half, 3)
    assert (used["allowed"], used["binding"], used["used"], used["entity"]["used"]) == (False, "entity", 2, 2)
    moment = start + HOUR + half
    assert used["retry_after"] == round((period_end - moment).total_seconds())
    held = then(start + 2 * HOUR + half)
    assert (held["allowed"], held["held"], held["entity"]["used"], held["entity"]["remaining"]) == (
        True,
        1,
        3,
        1,
    )
    full = then(start + 3 * HOUR + half)
    assert (full["allowed"], full["binding"], full["entity"]["used"], full["remaining"]) == (
        False,
        "entity",
        4,
        6,
    )
    assert then(start + 4 * HOUR + half, status=400)["error"]["code"] == "unknown_entity"
    assert check(api, tenant_a, "ana", status=400)["error"]["code"] == "unknown_entity"
