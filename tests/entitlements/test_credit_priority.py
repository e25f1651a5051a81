"""Credits draw down by priority, then expiry (issue #31, point 5; OpenMeter's model): a grant may name a priority
(lower first), every other lot has 10, and lots of one priority go oldest-expiring first. Holds draw in the same
order; a priority on a feature that is not credits is refused and grants nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Feature
from entitlements.models import CreditLot, Grant
from tests.entitlements.helpers import feature
from tests.entitlements.test_consume import consume


@pytest.fixture
def features(tenant_a):
    return {
        "credits": feature(tenant_a.project, "ai_credits", Feature.Type.CREDITS),
        "exports": feature(tenant_a.project, "exports", Feature.Type.METERED),
    }


def grant(api, key, value, *, status=201, feature="ai_credits", **extra):
    body = {"customer": "u1", "feature": feature, "value": value, "reason": "promo", **extra}
    response = api.post("/api/v1/entitlements/grants", body, key=key)
    assert response.status_code == status, response.json()
    return response.json()


def remaining():
    return {lot.grant.reason: lot.remaining for lot in CreditLot.objects.select_related("grant")}


def test_lower_priority_numbers_are_spent_first_then_the_lot_expiring_first(api, tenant_a, features):
    soon = (timezone.now() + timedelta(days=2)).isoformat()
    grant(api, tenant_a.key, 100, reason="paid")  # priority 10 (the default), no expiry
    grant(api, tenant_a.key, 30, reason="soon", expires_at=soon)  # priority 10, expires first
    promo = grant(
        api,
        tenant_a.key,
        50,
        reason="promo",
        priority=1,
        expires_at=(timezone.now() + timedelta(days=20)).isoformat(),
    )
    last = grant(api, tenant_a.key, 40, reason="last", priority=200)
    assert (promo["priority"], last["priority"]) == (1, 200)

    assert consume(api, tenant_a.key, "c1", "ai_credits", 60)["balance"] == 160
    assert remaining() == {"paid": 100, "soon": 20, "promo": 0, "last": 40}
    assert consume(api, tenant_a.key, "c2", "ai_credits", 70)["balance"] == 90
    assert remaining() == {"paid": 50, "soon": 0, "promo": 0, "last": 40}
    # A hold draws in the same order.
    body = {"id": "h1", "customer": "u1", "feature": "ai_credits", "quantity": 60}
    assert api.post("/api/v1/entitlements/holds", body, key=tenant_a.key).status_code == 200
    assert remaining() == {"paid": 0, "soon": 0, "promo": 0, "last": 30}

    lots = api.get(
        "/api/v1/credits", key=tenant_a.key, json_body={"customer": "u1", "feature": "ai_credits"}
    ).json()
    assert sorted((lot["amount"], lot["priority"]) for lot in lots["lots"]) == [
        (30, 10),
        (40, 200),
        (50, 1),
        (100, 10),
    ]


def test_a_priority_is_only_for_credits_and_a_refused_grant_grants_nothing(api, tenant_a, features):
    refused = grant(api, tenant_a.key, 5, status=400, feature="exports", priority=1)
    assert (refused["error"]["code"], refused["error"]["param"]) == ("invalid_parameter", "priority")
    out_of_range = grant(api, tenant_a.key, 5, status=400, priority=256)
    assert out_of_range["error"]["param"] == "priority"
    assert not Grant.objects.exists()
    assert not CreditLot.objects.exists()
