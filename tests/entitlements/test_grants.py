"""Grants and revocations through the API: validated by feature type, audited with actor and reason in the
same transaction, announced with `entitlements.updated`, and deleted with an optional reason."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import AuditLogEntry
from entitlements.models import Feature, Grant
from tests.entitlements.helpers import check, feature
from webhooks.models import Event


@pytest.fixture
def features(tenant_a):
    p = tenant_a.project
    return {
        "sso": feature(p, "sso"),
        "calls": feature(p, "api_calls", Feature.Type.METERED),
        "credits": feature(p, "ai_credits", Feature.Type.CREDITS),
        "tier": feature(p, "tier", Feature.Type.STATIC),
    }


def grant(api, key, **body):
    return api.post("/api/v1/entitlements/grants", {"customer": "u1", "reason": "deal", **body}, key=key)


def test_grant_is_audited_and_announced(api, tenant_a, features):
    response = grant(api, tenant_a.key, feature="sso")
    assert response.status_code == 201
    body = response.json()
    assert body["object"] == "entitlement_grant"
    assert (body["customer"], body["feature"], body["value"], body["deleted"]) == ("u1", "sso", True, False)
    assert body["id"].startswith("grant_")
    entry = AuditLogEntry.objects.get(action="entitlement_grant.created")
    assert (entry.actor_type, entry.reason, entry.target_id) == ("api_key", "deal", body["id"])
    assert entry.after["feature"] == "sso"
    updated = Event.objects.get(type="entitlements.updated")
    assert updated.data["object"]["customer"] == "u1"
    deleted = api.delete(f"/api/v1/entitlements/grants/{body['id']}", key=tenant_a.key)
    assert deleted.status_code == 200
    assert deleted.json()["deleted"] is True
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is False
    assert Event.objects.filter(type="entitlements.updated").count() == 2
    again = api.delete(f"/api/v1/entitlements/grants/{body['id']}", key=tenant_a.key)
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"feature": "sso", "value": 3}, "value"),
        ({"feature": "api_calls", "value": -1}, "value"),
        ({"feature": "api_calls", "value": "lots"}, "value"),
        ({"feature": "ai_credits"}, "value"),
        ({"feature": "ai_credits", "value": 0}, "value"),
        ({"feature": "tier"}, "value"),
        ({"feature": "nope"}, "feature"),
        ({"feature": "sso", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"feature": "sso", "reason": ""}, "reason"),
        ({"feature": "sso", "bogus": 1}, "bogus"),
    ],
)
def test_grant_validation(api, tenant_a, features, body, param):
    response = grant(api, tenant_a.key, **body)
    assert response.status_code in (400, 404), response.json()
    assert response.json()["error"]["param"] == param
    assert not Grant.objects.exists()
    assert not AuditLogEntry.objects.filter(action__startswith="entitlement").exists()


def test_unlimited_metered_grant(api, tenant_a, features):
    assert grant(api, tenant_a.key, feature="api_calls", value=None).status_code == 201
    answer = check(api, tenant_a.key, "u1", "api_calls", 10**6)
    assert (answer["allowed"], answer["limit"]) == (True, None)


def test_revocation_is_audited(api, tenant_a, features):
    expires = (timezone.now() + timedelta(days=1)).isoformat()
    response = api.post(
        "/api/v1/entitlements/revocations",
        {"customer": "u1", "feature": "sso", "reason": "chargeback", "expires_at": expires},
        key=tenant_a.key,
    )
    assert response.status_code == 201
    assert response.json()["object"] == "entitlement_revocation"
    entry = AuditLogEntry.objects.get(action="entitlement_revocation.created")
    assert entry.reason == "chargeback"
    api.delete(
        f"/api/v1/entitlements/revocations/{response.json()['id']}", {"reason": "resolved"}, key=tenant_a.key
    )
    assert AuditLogEntry.objects.get(action="entitlement_revocation.deleted").reason == "resolved"


def test_idempotency_key_replays_a_grant(api, tenant_a, features):
    headers = {"Idempotency-Key": "grant-1"}
    first = api.post(
        "/api/v1/entitlements/grants",
        {"customer": "u1", "feature": "sso", "reason": "deal"},
        key=tenant_a.key,
        headers=headers,
    )
    second = api.post(
        "/api/v1/entitlements/grants",
        {"customer": "u1", "feature": "sso", "reason": "deal"},
        key=tenant_a.key,
        headers=headers,
    )
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Grant.objects.count() == 1
