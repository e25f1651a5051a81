"""A customer's own balance thresholds on a credits feature (issue #31, point 4): announced as
`credits.threshold_reached` when a consume or a hold takes the balance from above one to or below it, once per
funding — a hold given back and spent again announces nothing new, credits granted anew re-arm it — also under
50 concurrent spenders."""

import pytest
from django.test import Client

from catalog.models import Feature
from entitlements.models import ThresholdCrossing
from events.models import Event
from tests.entitlements.helpers import feature
from tests.entitlements.test_consume import _concurrently, _post, consume


@pytest.fixture
def ai_credits(tenant_a):
    return feature(tenant_a.project, "ai_credits", Feature.Type.CREDITS)


def grant(api, key, value, customer="u1"):
    body = {"customer": customer, "feature": "ai_credits", "value": value, "reason": "top-up"}
    assert api.post("/api/v1/entitlements/grants", body, key=key).status_code == 201


def add(api, key, status=201, **body):
    response = api.post(
        "/api/v1/entitlements/thresholds", {"customer": "u1", "feature": "ai_credits", **body}, key=key
    )
    assert response.status_code == status, response.json()
    return response.json()


def reached():
    events = Event.objects.filter(type="credits.threshold_reached").order_by("sequence")
    return [
        (
            e.data["object"]["threshold_id"],
            e.data["object"]["percent"],
            e.data["object"]["units"],
            e.data["object"]["balance"],
        )
        for e in events
    ]


def hold(api, key, hold_id, quantity):
    body = {"id": hold_id, "customer": "u1", "feature": "ai_credits", "quantity": quantity}
    response = api.post("/api/v1/entitlements/holds", body, key=key)
    assert response.status_code == 200, response.json()


def test_each_balance_threshold_is_announced_once_as_the_balance_falls(api, tenant_a, ai_credits):
    grant(api, tenant_a.key, 100)
    fifty = add(api, tenant_a.key, quantity=50)
    fifth = add(api, tenant_a.key, percent=20)
    assert (fifty["quantity"], fifty["percent"], fifth["percent"]) == (50, None, 20)
    consume(api, tenant_a.key, "c1", "ai_credits", 40)
    assert reached() == []
    consume(api, tenant_a.key, "c2", "ai_credits", 15)
    assert reached() == [(fifty["id"], None, 50, 45)]
    consume(api, tenant_a.key, "c3", "ai_credits", 30)
    assert reached() == [(fifty["id"], None, 50, 45), (fifth["id"], 20, 20, 15)]
    consume(
        api, tenant_a.key, "c4", "ai_credits", 15
    )  # to zero: nothing more of ours (credits.low says empty)
    assert len(reached()) == 2
    event = Event.objects.filter(type="credits.threshold_reached").order_by("sequence").first()
    assert event.data["object"] == {
        "customer": "u1",
        "feature": "ai_credits",
        "threshold_id": fifty["id"],
        "percent": None,
        "units": 50,
        "balance": 45,
    }


def test_a_hold_given_back_does_not_re_announce_and_a_new_grant_re_arms(api, tenant_a, ai_credits):
    grant(api, tenant_a.key, 55)
    fifty = add(api, tenant_a.key, quantity=50)
    hold(api, tenant_a.key, "h1", 10)  # 55 → 45: a hold takes the balance down too
    assert reached() == [(fifty["id"], None, 50, 45)]
    assert api.post("/api/v1/entitlements/holds/h1/release", {}, key=tenant_a.key).status_code == 200
    consume(api, tenant_a.key, "c1", "ai_credits", 10)  # 55 → 45 again, in the same funding
    assert reached() == [(fifty["id"], None, 50, 45)]
    grant(api, tenant_a.key, 100)  # 145: funded anew
    consume(api, tenant_a.key, "c2", "ai_credits", 100)
    assert reached() == [(fifty["id"], None, 50, 45), (fifty["id"], None, 50, 45)]
    assert ThresholdCrossing.objects.filter(threshold=fifty["id"]).count() == 2


def test_a_percent_over_100_is_refused_for_a_balance_and_nothing_is_stored(api, tenant_a, ai_credits):
    refused = add(api, tenant_a.key, status=400, percent=150)
    assert (refused["error"]["code"], refused["error"]["param"]) == ("invalid_parameter", "percent")
    listed = api.get("/api/v1/entitlements/thresholds", key=tenant_a.key, json_body={"customer": "u1"}).json()
    assert listed["data"] == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_spenders_announce_each_balance_threshold_once(tenant_a, ai_credits):
    client = Client()
    headers = {"Authorization": f"Bearer {tenant_a.key}"}
    for path, body in (
        (
            "/api/v1/entitlements/grants",
            {"customer": "hot", "feature": "ai_credits", "value": 100, "reason": "r"},
        ),
        ("/api/v1/entitlements/thresholds", {"customer": "hot", "feature": "ai_credits", "quantity": 50}),
        ("/api/v1/entitlements/thresholds", {"customer": "hot", "feature": "ai_credits", "percent": 10}),
    ):
        response = client.post(path, body, content_type="application/json", headers=headers)
        assert response.status_code == 201, response.json()
    results = _concurrently(
        50,
        lambda i, c: _post(
            c,
            tenant_a.key,
            "/api/v1/entitlements/consume",
            {"id": f"t{i}", "customer": "hot", "feature": "ai_credits", "quantity": 3},
        ),
    )
    assert sum(r["allowed"] for r in results) == 33  # 100 credits, 3 each
    announced = sorted((units, balance) for _, _, units, balance in reached())
    assert announced == [
        (10, 10),
        (50, 49),
    ]  # spends of 3 from 100, one after the other under the lots' locks
