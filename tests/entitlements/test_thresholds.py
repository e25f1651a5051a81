"""A customer's own usage thresholds: announced once per period when usage goes over them (by a consume, a usage
event or a hold), beside 80 % and 100 %, also under 50 concurrent consumers; a deleted one announces nothing."""

import pytest

from catalog.models import Feature
from entitlements.models import ThresholdCrossing, UsageThreshold
from events.models import Event
from tests.entitlements.helpers import customer, feature, product, subscribe
from tests.entitlements.test_consume import _concurrently, _post, consume


@pytest.fixture
def plan(tenant_a):
    p = tenant_a.project
    exports = feature(p, "exports", Feature.Type.METERED)
    feature(p, "seats", Feature.Type.ALLOCATION)
    product(p, "free", {exports: 10})
    p.default_product = "free"
    p.save()
    return {"exports": exports}


def add(api, key, status=201, **body):
    response = api.post(
        "/api/v1/entitlements/thresholds", {"customer": "u1", "feature": "exports", **body}, key=key
    )
    assert response.status_code == status, response.json()
    return response.json()


def reached():
    events = Event.objects.filter(type="usage.threshold_reached").order_by("sequence")
    return [
        (
            e.data["object"]["threshold"],
            e.data["object"]["threshold_id"],
            e.data["object"]["units"],
            e.data["object"]["used"],
        )
        for e in events
    ]


def test_a_percent_and_a_quantity_threshold_are_each_announced_once(api, tenant_a, plan):
    half = add(api, tenant_a.key, percent=50)
    assert {key: half[key] for key in ("object", "customer", "feature", "percent", "quantity")} == {
        "object": "usage_threshold",
        "customer": "u1",
        "feature": "exports",
        "percent": 50,
        "quantity": None,
    }
    assert add(api, tenant_a.key, status=200, percent=50)["id"] == half["id"]  # the same one again
    seven = add(api, tenant_a.key, quantity=7)
    consume(api, tenant_a.key, "c1", "exports", 4)
    assert reached() == []
    consume(api, tenant_a.key, "c2", "exports", 2)  # 4 → 6: 50 %
    consume(api, tenant_a.key, "c3", "exports", 2)  # 6 → 8: 7 units and 80 %
    assert reached() == [(0.5, half["id"], 5, 6), (0.7, seven["id"], 7, 8), (0.8, None, 8, 8)]
    consume(api, tenant_a.key, "c4", "exports", 2)  # 8 → 10: 100 %
    assert reached()[-1] == (1.0, None, 10, 10)
    assert ThresholdCrossing.objects.count() == 4
    listed = api.get("/api/v1/entitlements/thresholds?customer=u1", key=tenant_a.key).json()
    assert [(t["id"], t["percent"], t["quantity"]) for t in listed["data"]] == [
        (half["id"], 50, None),
        (seven["id"], None, 7),
    ]


def test_usage_events_and_holds_cross_thresholds_too(api, tenant_a, plan):
    add(api, tenant_a.key, percent=30)
    recorded = api.post(
        "/api/v1/usage", {"id": "e1", "customer": "u1", "feature": "exports", "quantity": 3}, key=tenant_a.key
    )
    assert recorded.status_code == 201
    assert [(t, units) for t, _, units, _ in reached()] == [(0.3, 3)]
    held = api.post(
        "/api/v1/entitlements/holds",
        {"id": "h1", "customer": "u1", "feature": "exports", "quantity": 5},
        key=tenant_a.key,
    )
    assert held.json()["allowed"] is True
    assert [(t, units) for t, _, units, _ in reached()] == [(0.3, 3), (0.8, 8)]


def test_a_deleted_threshold_announces_nothing(api, tenant_a, plan):
    half = add(api, tenant_a.key, percent=50)
    deleted = api.delete(f"/api/v1/entitlements/thresholds/{half['id']}", key=tenant_a.key)
    assert deleted.status_code == 200
    assert (deleted.json()["id"], deleted.json()["deleted"]) == (half["id"], True)
    assert not UsageThreshold.objects.exists()
    consume(api, tenant_a.key, "c1", "exports", 6)
    assert reached() == []
    assert api.delete(f"/api/v1/entitlements/thresholds/{half['id']}", key=tenant_a.key).status_code == 404


def test_what_a_threshold_must_be(api, tenant_a, plan):
    assert (
        add(api, tenant_a.key, status=400, feature="seats", percent=50)["error"]["code"]
        == "feature_not_metered"
    )
    assert add(api, tenant_a.key, status=400, percent=50, quantity=5)["error"]["param"] == "percent"
    assert add(api, tenant_a.key, status=400)["error"]["param"] == "percent"
    assert add(api, tenant_a.key, status=400, percent=0)["error"]["param"] == "percent"
    for value in range(1, 21):
        add(api, tenant_a.key, quantity=value)
    assert add(api, tenant_a.key, status=400, quantity=21)["error"]["code"] == "too_many_thresholds"
    assert UsageThreshold.objects.count() == 20


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_consumers_announce_a_threshold_once(api, tenant_a, plan):
    pro = product(tenant_a.project, "pro", {plan["exports"]: 100})
    subscribe(customer(tenant_a.project, "hot"), pro)
    mine = api.post(
        "/api/v1/entitlements/thresholds",
        {"customer": "hot", "feature": "exports", "quantity": 25},
        key=tenant_a.key,
    ).json()
    results = _concurrently(
        50,
        lambda i, client: _post(
            client,
            tenant_a.key,
            "/api/v1/entitlements/consume",
            {"id": f"t{i}", "customer": "hot", "feature": "exports", "quantity": 1},
        ),
    )
    assert sum(r["allowed"] for r in results) == 50
    assert [(threshold_id, units, used) for _, threshold_id, units, used in reached()] == [
        (mine["id"], 25, 25)
    ]
