"""`/api/v1/agent_keys`: a project creates (the secret answered once), lists and revokes its agent keys; another
project can neither see nor revoke them; an agent key is no API key."""

import pytest

from agents.models import AgentKey
from agents.services.keys import agent_key_authenticate
from agents.tools import ToolRefused, tool_call
from core.models import AuditLogEntry

pytestmark = pytest.mark.django_db

READS = [
    "customer_lookup",
    "subscriptions_list",
    "invoices_list",
    "usage_summary",
    "entitlements_explain",
    "margins_report",
]


def test_a_key_is_created_read_only_and_its_secret_answered_once(api, tenant_a):
    response = api.post("/api/v1/agent_keys", {"name": "support bot"}, key=tenant_a.key)

    assert response.status_code == 201, response.json()
    body = response.json()
    key = AgentKey.objects.get()
    secret = body.pop("agent_key")
    assert secret.startswith("tg_ak_")
    assert body == {
        "id": key.pk,
        "object": "agent_key",
        "project": tenant_a.project.pk,
        "name": "support bot",
        "prefix": secret[:12],
        "tools": READS,
        "can_confirm": False,
        "created_at": body["created_at"],
        "last_used_at": None,
        "revoked_at": None,
    }
    assert key.key_hash != secret
    assert secret not in str(AgentKey.objects.values().get())  # only its hash is kept
    listed = api.get("/api/v1/agent_keys", key=tenant_a.key).json()
    assert listed == {"object": "list", "data": [body], "has_more": False}  # never the secret again
    assert agent_key_authenticate(secret=secret) == key
    assert AgentKey.objects.get().last_used_at is not None
    created = AuditLogEntry.objects.get(action="agent_key.created")
    assert (created.actor_type, created.target_id, created.after["tools"]) == ("api_key", key.pk, READS)


def test_a_key_with_chosen_tools_and_the_right_to_confirm(api, tenant_a):
    response = api.post(
        "/api/v1/agent_keys",
        {"tools": ["move_confirm", "customer_lookup", "move_confirm"], "can_confirm": True},
        key=tenant_a.key,
    )
    assert response.status_code == 201, response.json()
    assert (response.json()["tools"], response.json()["can_confirm"]) == (
        ["customer_lookup", "move_confirm"],
        True,
    )
    unknown = api.post("/api/v1/agent_keys", {"tools": ["drop_tables"]}, key=tenant_a.key)
    assert (unknown.status_code, unknown.json()["error"]["param"]) == (400, "tools[0]")
    assert AgentKey.objects.count() == 1


def test_an_agent_key_is_no_api_key(api, tenant_a):
    secret = api.post("/api/v1/agent_keys", {}, key=tenant_a.key).json()["agent_key"]
    response = api.get("/api/v1/customers", key=secret)
    assert response.status_code == 401
    assert agent_key_authenticate(secret=tenant_a.key) is None  # nor an API key an agent key


def test_a_revoked_key_is_refused_and_revoking_again_changes_nothing(api, tenant_a):
    created = api.post("/api/v1/agent_keys", {}, key=tenant_a.key).json()
    path = f"/api/v1/agent_keys/{created['id']}"

    revoked = api.delete(path, {"reason": "rotated"}, key=tenant_a.key)
    again = api.delete(path, key=tenant_a.key)

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert agent_key_authenticate(secret=created["agent_key"]) is None
    with pytest.raises(ToolRefused) as refused:
        tool_call(key=AgentKey.objects.get(), name="customer_lookup", arguments={"customer": "u1"})
    assert refused.value.code == "key_revoked"
    row = AuditLogEntry.objects.get(action="agent_key.revoked")
    assert (row.actor_type, row.reason) == ("api_key", "rotated")


def test_another_project_can_neither_see_nor_revoke_a_key(api, tenant_a, tenant_b):
    created = api.post("/api/v1/agent_keys", {}, key=tenant_a.key).json()

    response = api.delete(f"/api/v1/agent_keys/{created['id']}", key=tenant_b.key)

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    assert AgentKey.objects.get().revoked_at is None
    assert not AuditLogEntry.objects.filter(action="agent_key.revoked").exists()
    assert api.get("/api/v1/agent_keys", key=tenant_b.key).json()["data"] == []
