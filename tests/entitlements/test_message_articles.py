"""Messages that name a feature's type read as English: "an allocation feature", "a metered feature"."""

import pytest

from catalog.models import Feature
from entitlements.models import Grant, UsageThreshold
from tests.entitlements.helpers import feature, product


@pytest.fixture
def plan(tenant_a):
    p = tenant_a.project
    exports = feature(p, "exports", Feature.Type.METERED)
    feature(p, "seats", Feature.Type.ALLOCATION)
    product(p, "free", {exports: 10})
    p.default_product = "free"
    p.save()


def _message(response):
    assert response.status_code == 400, response.json()
    return response.json()["error"]["message"]


def test_an_allocation_feature_is_named_with_an(api, tenant_a, plan):
    threshold = api.post(
        "/api/v1/entitlements/thresholds",
        {"customer": "u1", "feature": "seats", "percent": 50},
        key=tenant_a.key,
    )
    grant = api.post(
        "/api/v1/entitlements/grants",
        {"customer": "u1", "feature": "seats", "value": 2, "reason": "promo", "priority": 1},
        key=tenant_a.key,
    )
    credits = api.get("/api/v1/credits?customer=u1&feature=seats", key=tenant_a.key)

    assert _message(threshold) == (
        "feature: 'seats' is an allocation feature; thresholds are for metered features (usage) "
        "and credits features (the balance)."
    )
    assert _message(grant) == (
        "priority: only credits grants have a drawdown priority; 'seats' is an allocation feature."
    )
    assert _message(credits) == "feature: 'seats' is an allocation feature, not a credits feature."
    assert not UsageThreshold.objects.exists()
    assert not Grant.objects.exists()


def test_a_feature_type_starting_with_a_consonant_keeps_a(api, tenant_a, plan):
    grant = api.post(
        "/api/v1/entitlements/grants",
        {"customer": "u1", "feature": "exports", "value": 2, "reason": "promo", "priority": 1},
        key=tenant_a.key,
    )

    assert _message(grant) == (
        "priority: only credits grants have a drawdown priority; 'exports' is a metered feature."
    )
    assert not Grant.objects.exists()
