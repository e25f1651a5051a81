"""Holds of an allocation feature and the entities it counts, against `POST /entitlements/release`."""

import pytest

from catalog.models import Feature
from entitlements.models import AllocationCounter, UsageEvent
from tests.entitlements.helpers import customer, feature, product, subscribe

HOLDS = "/api/v1/entitlements/holds"
ENTITIES = "/api/v1/entitlements/entities"


@pytest.fixture
def seats(tenant_a):
    p = tenant_a.project
    seat = feature(p, "seats", Feature.Type.ALLOCATION)
    summaries = feature(p, "summaries", Feature.Type.METERED)
    values = {seat: 3, summaries: {"limit": 10, "per_entity": {"feature": "seats", "limit": 4}}}
    subscribe(customer(p, "u1"), product(p, "team", values))
    return seat


def test_release_cannot_give_back_a_unit_shared_by_a_live_entity_and_an_active_hold(api, tenant_a, seats):
    """3 seats: one is the live entity "ana", one is held by an active hold (an invitation), one was consumed.
    Only the consumed one may be given back with `POST /entitlements/release`: the entity's unit only removing it
    gives back, the held one only releasing the hold. Releasing 2 is `400 release_exceeds_allocation` with nothing
    changed (in_use 3, held 1): the units left must cover the held ones and the entities' together."""
    key = tenant_a.key
    assert (
        api.post(ENTITIES, {"customer": "u1", "feature": "seats", "entity": "ana"}, key=key).status_code
        == 201
    )
    held = api.post(HOLDS, {"id": "invite-1", "customer": "u1", "feature": "seats", "quantity": 1}, key=key)
    assert held.json()["allowed"] is True
    used = api.post(
        "/api/v1/entitlements/consume",
        {"id": "c1", "customer": "u1", "feature": "seats", "quantity": 1},
        key=key,
    )
    assert used.json()["allowed"] is True
    assert AllocationCounter.objects.values_list("in_use", "held").get() == (3, 1)

    response = api.post(
        "/api/v1/entitlements/release",
        {"id": "r1", "customer": "u1", "feature": "seats", "quantity": 2},
        key=key,
    )
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "release_exceeds_allocation"
    assert AllocationCounter.objects.values_list("in_use", "held").get() == (3, 1)
    assert not UsageEvent.objects.filter(event_id="r1").exists()
