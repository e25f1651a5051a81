"""What a customer is entitled to: each feature type and source, per-unit scaling, the default product,
precedence, top-up grants, revocations, and where each part came from (`sources`)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Subscription
from catalog.models import Feature
from entitlements.models import Grant, Revocation
from tests.entitlements.helpers import check, customer, feature, hand_subscription, listed, product, subscribe

M, C, A, S, B = (
    Feature.Type.METERED,
    Feature.Type.CREDITS,
    Feature.Type.ALLOCATION,
    Feature.Type.STATIC,
    Feature.Type.BOOLEAN,
)


@pytest.fixture
def features(tenant_a):
    p = tenant_a.project
    return {
        "sso": feature(p, "sso", B),
        "api_calls": feature(p, "api_calls", M),
        "ai_credits": feature(p, "ai_credits", C),
        "seats": feature(p, "seats", A),
        "tier": feature(p, "tier", S),
    }


def test_unknown_customer_gets_the_default_products_answer(api, tenant_a, features):
    free = product(tenant_a.project, "free", {features["api_calls"]: 100, features["tier"]: {"name": "free"}})
    tenant_a.project.default_product = free.key
    tenant_a.project.save()
    answer = check(api, tenant_a.key, "never-seen", "api_calls")
    assert answer == {
        "allowed": True,
        "feature": "api_calls",
        "type": "metered",
        "enabled": True,
        "value": 100,
        "limit": 100,
        "used": 0,
        "remaining": 100,
        "balance": None,
        "held": 0,
        "overage": "blocked",
        "cap": None,
        "account_cap": None,
        "credits": None,
        "step": "allowance",
        "windows": [],
        "binding": None,
        "retry_after": None,
    }
    rows = listed(api, tenant_a.key, "never-seen")
    assert rows["tier"]["value"] == {"name": "free"}
    assert rows["tier"]["sources"] == [
        {"type": "default_product", "id": free.pk, "product": "free", "value": {"name": "free"}}
    ]
    assert rows["sso"]["enabled"] is False
    assert rows["api_calls"]["resets_at"] is not None


def test_without_default_product_nothing_is_enabled(api, tenant_a, features):
    rows = listed(api, tenant_a.key, "nobody")
    assert {key: row["enabled"] for key, row in rows.items()} == dict.fromkeys(rows, False)
    assert check(api, tenant_a.key, "nobody", "sso")["allowed"] is False
    assert check(api, tenant_a.key, "nobody", "api_calls")["allowed"] is False


def test_unknown_feature_is_404(api, tenant_a, features):
    response = api.get(
        "/api/v1/entitlements/check", key=tenant_a.key, json_body={"customer": "u", "feature": "nope"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "feature"


def test_missing_parameters_are_400(api, tenant_a, features):
    response = api.get("/api/v1/entitlements/check", key=tenant_a.key, json_body={"feature": "sso"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "customer"
    response = api.get(
        "/api/v1/entitlements/check",
        key=tenant_a.key,
        json_body={"customer": "u", "feature": "sso", "quantity": "x"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "quantity"


def test_subscription_gives_each_type_with_per_unit_scaling(api, tenant_a, features):
    pro = product(
        tenant_a.project,
        "pro",
        {
            features["sso"]: True,
            features["api_calls"]: {"per_unit": 1000},
            features["seats"]: {"per_unit": 5},
            features["tier"]: "pro",
        },
    )
    sub = subscribe(customer(tenant_a.project, "u1"), pro, quantity=3)
    rows = listed(api, tenant_a.key, "u1")
    assert rows["sso"]["enabled"] is True
    assert rows["sso"]["value"] is True
    assert rows["api_calls"]["limit"] == 3000
    assert rows["seats"]["limit"] == 15  # 5 seats per licence × 3 licences
    assert rows["tier"]["value"] == "pro"
    assert rows["seats"]["sources"] == [
        {
            "type": "subscription",
            "id": sub.pk,
            "product": "pro",
            "value": 15,
            "quantity": 3,
            "status": "active",
        }
    ]
    assert rows["api_calls"]["resets_at"].startswith(sub.current_period_end.strftime("%Y-%m-%dT%H:%M"))
    assert check(api, tenant_a.key, "u1", "seats", 15)["allowed"] is True
    assert check(api, tenant_a.key, "u1", "seats", 16)["allowed"] is False


@pytest.mark.parametrize(
    ("status", "on"),
    [
        (Subscription.Status.ACTIVE, True),
        (Subscription.Status.TRIALING, True),
        (Subscription.Status.UNPAID, False),
        (Subscription.Status.PAUSED, False),
        (Subscription.Status.INCOMPLETE, False),
        (Subscription.Status.INCOMPLETE_EXPIRED, False),
        (Subscription.Status.CANCELED, False),
    ],
)
def test_subscription_statuses(api, tenant_a, features, status, on):
    pro = product(tenant_a.project, "pro", {features["sso"]: True})
    subscribe(
        customer(tenant_a.project, "u1"), pro, status=status, trial_end=timezone.now() + timedelta(days=3)
    )
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is on


def test_past_due_keeps_access_within_the_grace_period_then_not(api, tenant_a, features, recompute):
    pro = product(tenant_a.project, "pro", {features["sso"]: True})
    cust = customer(tenant_a.project, "u1")
    subscribe(cust, pro, status=Subscription.Status.PAST_DUE, start=timezone.now() - timedelta(days=2))
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is True  # default grace: 3 days
    Subscription.objects.filter(customer=cust).update(current_period_start=timezone.now() - timedelta(days=4))
    hand_subscription(Subscription.objects.get(customer=cust))  # what billing's mirror hands with the change
    recompute(cust)
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is False


def test_past_due_grace_is_a_project_setting(api, tenant_a, features):
    from entitlements.models import EntitlementSettings

    EntitlementSettings.objects.create(project=tenant_a.project, past_due_grace_seconds=3600)
    pro = product(tenant_a.project, "pro", {features["sso"]: True})
    subscribe(
        customer(tenant_a.project, "u1"),
        pro,
        status=Subscription.Status.PAST_DUE,
        start=timezone.now() - timedelta(hours=2),
    )
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is False


def test_cancel_at_period_end_stops_at_the_period_end(api, tenant_a, features):
    pro = product(tenant_a.project, "pro", {features["sso"]: True})
    subscribe(
        customer(tenant_a.project, "u1"),
        pro,
        start=timezone.now() - timedelta(days=31),
        days=30,
        cancel_at_period_end=True,
    )
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is False


def test_largest_plan_limit_wins_and_null_is_unlimited(api, tenant_a, features, recompute):
    p = tenant_a.project
    cust = customer(p, "u1")
    free = product(p, "free", {features["api_calls"]: 100})
    p.default_product = "free"
    p.save()
    subscribe(cust, product(p, "pro", {features["api_calls"]: 5000}))
    subscribe(cust, product(p, "team", {features["api_calls"]: 2000}))
    rows = listed(api, tenant_a.key, "u1")
    assert rows["api_calls"]["limit"] == 5000
    assert {s["product"] for s in rows["api_calls"]["sources"]} == {"free", "pro", "team"}
    subscribe(cust, product(p, "unlimited", {features["api_calls"]: None}))
    recompute(cust)
    assert check(api, tenant_a.key, "u1", "api_calls", 10**9)["limit"] is None
    assert check(api, tenant_a.key, "u1", "api_calls", 10**9)["allowed"] is True
    assert free.key == "free"


def test_static_value_precedence_subscription_over_default(api, tenant_a, features):
    p = tenant_a.project
    product(p, "free", {features["tier"]: "free"})
    p.default_product = "free"
    p.save()
    subscribe(customer(p, "u1"), product(p, "pro", {features["tier"]: "pro"}))
    assert check(api, tenant_a.key, "u1", "tier")["value"] == "pro"
    assert check(api, tenant_a.key, "u2", "tier")["value"] == "free"


def test_grants_top_up_counted_features_and_set_boolean_and_static(api, tenant_a, features):
    p = tenant_a.project
    cust = customer(p, "u1")
    subscribe(
        cust, product(p, "pro", {features["api_calls"]: 1000, features["seats"]: 3, features["tier"]: "pro"})
    )
    for key, value in (("api_calls", 500), ("seats", 2), ("tier", "enterprise"), ("sso", True)):
        response = api.post(
            "/api/v1/entitlements/grants",
            {"customer": "u1", "feature": key, "value": value, "reason": "deal"},
            key=tenant_a.key,
        )
        assert response.status_code == 201, response.json()
    rows = listed(api, tenant_a.key, "u1")
    assert rows["api_calls"]["limit"] == 1500
    assert rows["seats"]["limit"] == 5
    assert rows["tier"]["value"] == "enterprise"
    assert rows["sso"]["enabled"] is True
    assert [s["type"] for s in rows["api_calls"]["sources"]] == ["subscription", "grant"]


def test_revocation_wins_over_everything_until_deleted(api, tenant_a, features):
    p = tenant_a.project
    subscribe(customer(p, "u1"), product(p, "pro", {features["sso"]: True, features["api_calls"]: None}))
    api.post(
        "/api/v1/entitlements/grants", {"customer": "u1", "feature": "sso", "reason": "x"}, key=tenant_a.key
    )
    revoked = api.post(
        "/api/v1/entitlements/revocations",
        {"customer": "u1", "feature": "sso", "reason": "abuse"},
        key=tenant_a.key,
    )
    assert revoked.status_code == 201
    api.post(
        "/api/v1/entitlements/revocations",
        {"customer": "u1", "feature": "api_calls", "reason": "abuse"},
        key=tenant_a.key,
    )
    sso = check(api, tenant_a.key, "u1", "sso")
    assert (sso["allowed"], sso["enabled"], sso["value"]) == (False, False, False)
    calls = check(api, tenant_a.key, "u1", "api_calls")
    assert (calls["allowed"], calls["limit"]) == (False, 0)
    assert listed(api, tenant_a.key, "u1")["sso"]["sources"][-1]["type"] == "revocation"
    deleted = api.delete(
        f"/api/v1/entitlements/revocations/{revoked.json()['id']}", {"reason": "appeal"}, key=tenant_a.key
    )
    assert deleted.status_code == 200
    assert deleted.json()["deleted"] is True
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is True
    assert Revocation.objects.get(pk=revoked.json()["id"]).deleted_at is not None


def test_grant_and_revocation_expire_on_time(api, tenant_a, features):
    import time_machine

    api.post(
        "/api/v1/entitlements/grants",
        {
            "customer": "u1",
            "feature": "sso",
            "reason": "trial",
            "expires_at": (timezone.now() + timedelta(hours=1)).isoformat(),
        },
        key=tenant_a.key,
    )
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is True
    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=1)):
        assert check(api, tenant_a.key, "u1", "sso")["allowed"] is False
    assert Grant.objects.count() == 1
