"""Grants and revocations through the API: validated by feature type, audited with actor and reason in the
same transaction, announced with `entitlements.updated`, and deleted with an optional reason."""

import hashlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Feature
from core.models import AuditLogEntry
from entitlements.models import EntitlementState, Grant
from entitlements.resolver import resolve_structure
from entitlements.services.recompute import _answer_digest
from events.models import Event
from tests.entitlements.helpers import check, feature


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


def test_a_credits_grant_is_announced_like_a_boolean_grant(api, tenant_a, features):
    """A credits grant changes no limit or value (credits answer by balance), yet what the customer may use
    changed: it is announced with the new balance, and so is its deletion."""
    response = grant(api, tenant_a.key, feature="ai_credits", value=500)
    assert response.status_code == 201
    updated = Event.objects.get(type="entitlements.updated")
    rows = {row["feature"]: row for row in updated.data["object"]["entitlements"]}
    assert updated.data["object"]["customer"] == "u1"
    assert sorted(rows) == ["ai_credits", "api_calls", "sso", "tier"]
    assert rows["ai_credits"] == {
        "feature": "ai_credits",
        "type": "credits",
        "enabled": True,
        "value": None,
        "limit": None,
        "used": None,
        "remaining": 500,
        "balance": 500,
        "held": 0,
        "overage": None,
        "cap": None,
        "account_cap": None,
        "credits": None,
        "step": None,
        "windows": [],
        "binding": None,
        "retry_after": None,
        "resets_at": None,
        "sources": [
            {"type": "grant", "id": response.json()["id"], "value": 500, "reason": "deal", "expires_at": None}
        ],
    }
    deleted = api.delete(f"/api/v1/entitlements/grants/{response.json()['id']}", key=tenant_a.key)
    assert deleted.status_code == 200
    ended = Event.objects.filter(type="entitlements.updated").exclude(pk=updated.pk).get()
    rows = {row["feature"]: row for row in ended.data["object"]["entitlements"]}
    assert (rows["ai_credits"]["balance"], rows["ai_credits"]["sources"]) == (0, [])


def test_spending_credits_announces_nothing(api, tenant_a, features):
    grant(api, tenant_a.key, feature="ai_credits", value=5)
    consumed = api.post(
        "/api/v1/entitlements/consume",
        {"id": "c-1", "customer": "u1", "feature": "ai_credits", "quantity": 2},
        key=tenant_a.key,
    )
    assert (consumed.status_code, consumed.json()["balance"]) == (200, 3)
    assert Event.objects.filter(type="entitlements.updated").count() == 1


def test_digests_stored_before_credits_had_sources_stay_valid(api, tenant_a, features):
    """Only credits features carry their sources in the digest: a customer without credits keeps the digest stored
    under the earlier shape, so a deploy announces nothing for them."""
    grant(api, tenant_a.key, feature="sso")
    state = EntitlementState.objects.get()
    structure = resolve_structure(project=tenant_a.project, customer=state.customer, now=timezone.now())
    earlier = {
        key: [entry["type"], entry["enabled"], entry["value"], entry["limit"], entry["revoked"]]
        for key, entry in structure["features"].items()
        if entry["type"] != Feature.Type.CREDITS
    }
    structure["features"] = {
        k: v for k, v in structure["features"].items() if v["type"] != Feature.Type.CREDITS
    }
    assert (
        _answer_digest(structure) == hashlib.sha256(json.dumps(earlier, sort_keys=True).encode()).hexdigest()
    )
