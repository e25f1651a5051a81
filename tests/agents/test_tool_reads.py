"""The read tools answer what the REST API answers about one of the key's project's customers, by the tenant's
ids; a new key is read-only; every call is audited, refusals too, and a refused call does nothing."""

from datetime import UTC, datetime

import pytest
import time_machine

from agents.tools import READ_ONLY, TOOLS, ToolError, ToolRefused
from catalog.models import Feature
from core.models import AuditLogEntry
from entitlements.models import Grant
from tests.agents.conftest import tool_calls
from tests.e2e.test_subscription_lifecycle import _subscribe
from tests.entitlements.helpers import feature, product

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_a_new_key_may_call_the_read_tools_only(tenant_a, agent_key):
    key = agent_key(tenant_a.project)
    assert key.tools == [
        "customer_lookup",
        "subscriptions_list",
        "invoices_list",
        "usage_summary",
        "entitlements_explain",
        "margins_report",
    ]
    assert set(key.tools) == READ_ONLY == {name for name, tool in TOOLS.items() if tool.kind == "read"}
    assert key.can_confirm is False


def test_customer_lookup_answers_the_customer_as_the_api_does(api, tenant_a, agent_key, call):
    created = api.post(
        "/api/v1/customers",
        {"external_id": "user-1", "email": "ada@example.com", "name": "Ada", "metadata": {"plan": "gold"}},
        key=tenant_a.key,
    ).json()
    key = agent_key(tenant_a.project)

    found = call(key, "customer_lookup", customer="user-1")

    assert found == api.get("/api/v1/customers/user-1", key=tenant_a.key).json() == created
    assert (found["external_id"], found["email"], found["name"], found["metadata"]) == (
        "user-1",
        "ada@example.com",
        "Ada",
        {"plan": "gold"},
    )
    assert tool_calls(key) == [("customer_lookup", "ok", "")]


def test_subscriptions_and_invoices_of_a_customer(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, agent_key, call
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, customer="user-2")
    key = agent_key(tenant_a.project)

    subscriptions = call(key, "subscriptions_list", customer="user-1")
    invoices = call(key, "invoices_list", customer="user-1")

    listed = api.get("/api/v1/subscriptions", key=tenant_a.key, json_body={"customer": "user-1"}).json()
    assert subscriptions == listed
    assert [(s["customer"], s["status"], s["price"]) for s in subscriptions["data"]] == [
        ("user-1", "active", "pro-monthly")
    ]
    assert subscriptions["has_more"] is False
    assert invoices == api.get("/api/v1/invoices", key=tenant_a.key, json_body={"customer": "user-1"}).json()
    assert [(i["customer"], i["status"], i["total"], i["currency"]) for i in invoices["data"]] == [
        ("user-1", "paid", 3000, "usd")
    ]


@time_machine.travel(NOW, tick=False)
def test_usage_summary_is_the_periods_use_of_each_metered_feature(api, tenant_a, agent_key, call):
    project = tenant_a.project
    calls = feature(project, "api_calls", Feature.Type.METERED)
    seats = feature(project, "seats", Feature.Type.ALLOCATION)
    sso = feature(project, "sso")
    product(project, "free", {calls: 100, seats: 3, sso: True})
    project.default_product = "free"
    project.save()
    api.post("/api/v1/customers", {"external_id": "u1"}, key=tenant_a.key)
    for event_id, quantity in (("e1", 5), ("e2", 2)):
        response = api.post(
            "/api/v1/usage",
            {"id": event_id, "customer": "u1", "feature": "api_calls", "quantity": quantity},
            key=tenant_a.key,
        )
        assert response.status_code == 201
    key = agent_key(project)

    summary = call(key, "usage_summary", customer="u1")
    one = call(key, "usage_summary", customer="u1", feature="api_calls")

    rows = {row["feature"]: row for row in summary["usage"]}
    assert summary["customer"] == "u1"
    assert set(rows) == {"api_calls", "seats"}  # sso counts nothing
    assert (rows["api_calls"]["used"], rows["api_calls"]["limit"], rows["api_calls"]["remaining"]) == (
        7,
        100,
        93,
    )
    assert (rows["seats"]["used"], rows["seats"]["limit"]) == (0, 3)
    listed = api.get("/api/v1/entitlements", key=tenant_a.key, json_body={"customer": "u1"}).json()
    assert rows["api_calls"] == next(row for row in listed["entitlements"] if row["feature"] == "api_calls")
    assert one == {"customer": "u1", "usage": [rows["api_calls"]]}
    with pytest.raises(ToolError) as refused:
        call(key, "usage_summary", customer="u1", feature="sso")
    assert (refused.value.code, refused.value.param) == ("feature_not_metered", "feature")


def test_entitlements_explain_says_why(api, tenant_a, agent_key, call):
    project = tenant_a.project
    sso = feature(project, "sso")
    product(project, "free", {sso: True})
    project.default_product = "free"
    project.save()
    api.post("/api/v1/customers", {"external_id": "u1"}, key=tenant_a.key)
    key = agent_key(project)

    explained = call(key, "entitlements_explain", customer="u1")

    assert explained["customer"] == "u1"
    [row] = explained["features"]
    assert (row["key"], row["type"], row["allowed"], row["verdict"]) == (
        "sso",
        "boolean",
        True,
        "Allowed: on.",
    )
    assert [(s["kind"], s["effect"], s["product"]) for s in row["sources"]] == [
        ("default_product", "gives", "free")
    ]
    assert isinstance(explained["past_due_grace_seconds"], int)


def test_margins_report_answers_the_margins_api(api, tenant_a, agent_key, call):
    api.post("/api/v1/customers", {"external_id": "u1"}, key=tenant_a.key)
    key = agent_key(tenant_a.project)
    window = {"from": "2026-01-01", "to": "2026-02-01"}

    report = call(key, "margins_report", **window)

    assert report == api.get("/api/v1/margins", key=tenant_a.key, json_body=window).json()
    assert report == {"object": "list", "data": [], "has_more": False}
    with pytest.raises(ToolError) as refused:
        call(key, "margins_report", **{"from": "2026-02-01", "to": "2026-01-01"})
    assert refused.value.code == "invalid_range"


def test_a_tool_outside_the_keys_scope_is_refused_audited_and_does_nothing(api, tenant_a, agent_key, call):
    api.post("/api/v1/customers", {"external_id": "u1"}, key=tenant_a.key)
    feature(tenant_a.project, "sso")
    key = agent_key(tenant_a.project)  # read-only

    with pytest.raises(ToolRefused) as refused:
        call(key, "grant_create", customer="u1", feature="sso", reason="goodwill")

    assert (refused.value.code, refused.value.status) == ("tool_not_allowed", 403)
    assert not Grant.objects.exists()
    assert tool_calls(key) == [("grant_create", "refused", "tool_not_allowed")]
    row = AuditLogEntry.objects.get(action="agent.tool_call")
    assert (row.actor_type, row.actor_id, row.project_id) == ("agent_key", key.pk, tenant_a.project.pk)
    assert row.after["arguments"] == {"customer": "u1", "feature": "sso", "reason": "goodwill"}


@pytest.mark.parametrize(
    ("arguments", "param"),
    [
        ({}, "customer"),
        ({"customer": 7}, "customer"),
        ({"customer": ""}, "customer"),
        ({"customer": "u1", "extra": 1}, "extra"),
    ],
)
def test_arguments_the_schema_refuses_are_refused_before_anything_runs(
    tenant_a, agent_key, call, arguments, param
):
    key = agent_key(tenant_a.project)
    with pytest.raises(ToolRefused) as refused:
        call(key, "customer_lookup", **arguments)
    assert (refused.value.code, refused.value.param, refused.value.status) == (
        "invalid_arguments",
        param,
        400,
    )
    assert tool_calls(key) == [("customer_lookup", "refused", "invalid_arguments")]


def test_an_unknown_tool_a_revoked_key_and_a_suspended_project_are_refused(api, tenant_a, agent_key, call):
    from agents.services.keys import agent_key_revoke
    from core.actors import Actor

    key = agent_key(tenant_a.project)
    with pytest.raises(ToolRefused) as unknown:
        call(key, "payment_delete", payment="pay_1")
    assert unknown.value.code == "unknown_tool"

    tenant_a.project.status = "suspended"
    tenant_a.project.save()
    with pytest.raises(ToolRefused) as suspended:
        call(key, "customer_lookup", customer="u1")
    assert suspended.value.code == "project_suspended"

    agent_key_revoke(actor=Actor.system("tests"), agent_key=key)
    with pytest.raises(ToolRefused) as revoked:
        call(key, "customer_lookup", customer="u1")  # the key object is stale: tool_call reads it again
    assert (revoked.value.code, revoked.value.status) == ("key_revoked", 401)
    assert tool_calls(key) == [
        ("payment_delete", "refused", "unknown_tool"),
        ("customer_lookup", "refused", "project_suspended"),
        ("customer_lookup", "refused", "key_revoked"),
    ]


def test_an_unknown_customer_is_not_found(tenant_a, agent_key, call):
    key = agent_key(tenant_a.project)
    with pytest.raises(ToolError) as missing:
        call(key, "customer_lookup", customer="nobody")
    assert (missing.value.code, missing.value.status) == ("resource_missing", 404)
    assert tool_calls(key) == [("customer_lookup", "failed", "resource_missing")]


def test_past_the_rate_limit_a_call_is_refused_with_retry_after(api, tenant_a, agent_key, call, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    api.post("/api/v1/customers", {"external_id": "u1"}, key=tenant_a.key)
    key = agent_key(tenant_a.project)
    other = agent_key(tenant_a.project, name="other")

    with time_machine.travel(NOW, tick=False):
        for _ in range(3):
            assert call(key, "customer_lookup", customer="u1")["external_id"] == "u1"
        with pytest.raises(ToolRefused) as limited:
            call(key, "customer_lookup", customer="u1")
        # Each key has its own bucket.
        assert call(other, "customer_lookup", customer="u1")["external_id"] == "u1"

    assert (limited.value.code, limited.value.status) == ("rate_limited", 429)
    assert limited.value.retry_after == 60 - NOW.second % 60
    assert limited.value.body()["retry_after"] == limited.value.retry_after
    assert sorted(tool_calls(key)) == [  # all at one frozen instant: their order is not the log's
        ("customer_lookup", "ok", ""),
        ("customer_lookup", "ok", ""),
        ("customer_lookup", "ok", ""),
        ("customer_lookup", "refused", "rate_limited"),
    ]


def test_refused_calls_count_against_the_rate_limit_too(tenant_a, agent_key, call, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    key = agent_key(tenant_a.project)  # read-only
    refusals = [
        ("no_such_tool", {"customer": "u1"}),
        ("move_confirm", {"confirmation_id": "mvc_1"}),
        ("customer_lookup", {"customer": ""}),
    ]
    codes = []
    with time_machine.travel(NOW, tick=False):
        for name, arguments in refusals:
            with pytest.raises(ToolRefused) as refused:
                call(key, name, **arguments)
            codes.append(refused.value.code)
        with pytest.raises(ToolRefused) as limited:
            call(key, "move_confirm", confirmation_id="mvc_1")

    assert codes == ["unknown_tool", "tool_not_allowed", "invalid_arguments"]
    assert (limited.value.code, limited.value.status) == ("rate_limited", 429)
    assert len(tool_calls(key)) == 4


def test_a_call_its_transport_counted_already_is_not_counted_again(tenant_a, agent_key, call, settings):
    from agents.tools import rate_counted

    settings.API_RATE_LIMIT_PER_MINUTE = 1
    key = agent_key(tenant_a.project)
    with time_machine.travel(NOW, tick=False), rate_counted():
        for _ in range(3):
            with pytest.raises(ToolError) as missing:
                call(key, "customer_lookup", customer="nobody")
            assert missing.value.code == "resource_missing"


def test_a_nul_character_in_the_arguments_is_refused_and_audited_without_it(tenant_a, agent_key, call):
    key = agent_key(tenant_a.project, tools=[*READ_ONLY, "grant_create"])
    with pytest.raises(ToolRefused) as refused:
        call(key, "customer_lookup", customer="u1\x00")
    assert (refused.value.code, refused.value.param, refused.value.status) == (
        "invalid_arguments",
        "customer",
        400,
    )
    with pytest.raises(ToolRefused) as nested:
        call(key, "grant_create", customer="u1", feature="f", reason="r", value={"a\x00": ["\x00"]})
    assert (nested.value.code, nested.value.param) == ("invalid_arguments", "value")
    with pytest.raises(ToolRefused) as out_of_scope:
        call(key, "move_confirm\x00", confirmation_id="mvc_\x00")
    assert out_of_scope.value.code == "unknown_tool"

    assert tool_calls(key) == [
        ("customer_lookup", "refused", "invalid_arguments"),
        ("grant_create", "refused", "invalid_arguments"),
        ("move_confirm\ufffd", "refused", "unknown_tool"),
    ]
    rows = AuditLogEntry.objects.filter(action="agent.tool_call", target_id=key.pk).order_by(
        "created_at", "pk"
    )
    assert [row.after["arguments"] for row in rows] == [
        {"customer": "u1\ufffd"},
        {"customer": "u1", "feature": "f", "reason": "r", "value": {"a\ufffd": ["\ufffd"]}},
        {"confirmation_id": "mvc_\ufffd"},
    ]


def test_an_audit_that_fails_does_not_hide_the_calls_error(tenant_a, agent_key, call, monkeypatch):
    import agents.tools

    def broken(**kwargs):
        raise RuntimeError("the audit log is down")

    monkeypatch.setattr(agents.tools, "audit_record", broken)
    key = agent_key(tenant_a.project)
    with pytest.raises(ToolRefused) as refused:
        call(key, "move_confirm", confirmation_id="mvc_1")
    assert refused.value.code == "tool_not_allowed"
    with pytest.raises(ToolError) as missing:
        call(key, "customer_lookup", customer="nobody")
    assert missing.value.code == "resource_missing"
