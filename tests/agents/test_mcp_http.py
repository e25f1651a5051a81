"""The MCP server over Streamable HTTP, as an agent reaches it: config.mcp's app under a real uvicorn, the SDK's own
client. Only an agent key opens it (nothing runs, nothing is audited otherwise); a key lists and calls only its own
tools; reads answer what the REST API answers; a money move is a preview until a key allowed to confirm it does,
and confirming it twice moves the money once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from agents.models import AgentKey, MoveConfirmation
from agents.services.keys import agent_key_create, agent_key_revoke
from agents.tools import READ_ONLY, TOOLS
from billing.models import Payment, Refund
from core.actors import Actor
from core.models import AuditLogEntry
from entitlements.models import Grant
from projects.models import Project
from tests.agents.conftest import tool_calls
from tests.agents.mcp_servers import http_session, ok, over_http, refused, serving
from tests.billing.payment_factories import paid_credit_packs

pytestmark = pytest.mark.django_db(transaction=True)  # the server's threads read committed rows only

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "curl", "version": "1"},
    },
}
CALL = {
    "jsonrpc": "2.0",
    "id": 2,
    "method": "tools/call",
    "params": {"name": "customer_lookup", "arguments": {"customer": "user-1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """config.mcp's app (what `uvicorn config.mcp:app` serves), on a free port; its base URL."""
    import config.mcp

    with serving(config.mcp.app) as base:
        yield base


@pytest.fixture
def mcp_url(server: str) -> str:
    return f"{server}/mcp"


def _key(project: Any, tools: Any = None, can_confirm: bool = False) -> tuple[AgentKey, str]:
    return agent_key_create(
        actor=Actor.system("tests"), project=project, name="agent", tools=tools, can_confirm=can_confirm
    )


def _tool_names(url: str, secret: str) -> list[str]:
    async def steps(session: Any) -> list[str]:
        return [tool.name for tool in (await session.list_tools()).tools]

    return over_http(url, secret, steps)


def _call(url: str, secret: str, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    """Each `(tool, arguments)` called in turn in one session; their results."""

    async def steps(session: Any) -> list[Any]:
        return [await session.call_tool(name, arguments) for name, arguments in calls]

    return over_http(url, secret, steps)


def test_a_key_lists_exactly_its_tools_with_the_registrys_schemas(mcp_url, tenant_a):
    _, read_only = _key(tenant_a.project)
    _, some = _key(tenant_a.project, tools=["refund_request", "customer_lookup", "grant_create"])

    assert _tool_names(mcp_url, read_only) == [name for name in TOOLS if name in READ_ONLY]
    assert _tool_names(mcp_url, some) == ["customer_lookup", "grant_create", "refund_request"]

    async def listed(session: Any) -> list[Any]:
        return list((await session.list_tools()).tools)

    for tool in over_http(mcp_url, some, listed):
        registered = TOOLS[tool.name]
        assert (tool.description, tool.input_schema) == (registered.description, registered.parameters)
        assert tool.annotations.read_only_hint is (registered.kind == "read")
        assert tool.annotations.destructive_hint is False  # only move_confirm moves money


def test_a_read_tool_answers_what_the_api_answers(mcp_url, api, tenant_a):
    created = api.post(
        "/api/v1/customers",
        {"external_id": "user-1", "email": "ada@example.com", "name": "Ada", "metadata": {"plan": "gold"}},
        key=tenant_a.key,
    ).json()
    key, secret = _key(tenant_a.project)

    [result] = _call(mcp_url, secret, ("customer_lookup", {"customer": "user-1"}))

    assert ok(result) == created == api.get("/api/v1/customers/user-1", key=tenant_a.key).json()
    assert (created["external_id"], created["email"], created["metadata"]) == (
        "user-1",
        "ada@example.com",
        {"plan": "gold"},
    )
    assert tool_calls(key) == [("customer_lookup", "ok", "")]


def _post(url: str, body: dict[str, Any], authorization: str | None) -> httpx.Response:
    headers = dict(MCP_HEADERS)
    if authorization is not None:
        headers["Authorization"] = authorization
    return httpx.post(url, json=body, headers=headers, timeout=30)


def test_without_a_live_agent_key_nothing_runs(mcp_url, api, tenant_a):
    api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant_a.key)
    revoked, revoked_secret = _key(tenant_a.project)
    agent_key_revoke(actor=Actor.system("tests"), agent_key=revoked)
    _, live_secret = _key(tenant_a.project)
    audited = AuditLogEntry.objects.count()

    for authorization in (
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "Bearer tg_ak_nosuchkey",
        f"Bearer {tenant_a.key}",  # a project key opens the REST API, not the MCP server
        f"Bearer {revoked_secret}",
    ):
        for body in (INITIALIZE, CALL):
            response = _post(mcp_url, body, authorization)
            assert response.status_code == 401, (authorization, response.text)
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="mcp"'
            assert response.json()["error"]["code"] == "invalid_agent_key"

    Project.objects.filter(pk=tenant_a.project.pk).update(status=Project.Status.SUSPENDED)
    suspended = _post(mcp_url, CALL, f"Bearer {live_secret}")
    assert (suspended.status_code, suspended.json()["error"]["code"]) == (403, "project_suspended")

    assert AuditLogEntry.objects.count() == audited
    assert not AuditLogEntry.objects.filter(action="agent.tool_call").exists()
    # The SDK's client gets no session either.
    with pytest.raises(Exception):  # noqa: B017, PT011 (the SDK's own error for a refused connection)
        _tool_names(mcp_url, "tg_ak_nosuchkey")


def test_the_key_opens_mcp_only_from_an_allowed_host_and_live_needs_no_key(server, tenant_a):
    _, secret = _key(tenant_a.project)
    auth = {**MCP_HEADERS, "Authorization": f"Bearer {secret}"}

    assert httpx.get(f"{server}/live", timeout=10).json() == {"status": "ok"}
    foreign = httpx.post(
        f"{server}/mcp", json=INITIALIZE, headers={**auth, "Host": "evil.example"}, timeout=10
    )
    assert (foreign.status_code, foreign.json()["error"]["code"]) == (400, "invalid_host")
    page = httpx.post(
        f"{server}/mcp", json=INITIALIZE, headers={**auth, "Origin": "https://evil.example"}, timeout=10
    )
    assert (page.status_code, page.json()["error"]["code"]) == (403, "invalid_origin")
    answered = httpx.post(f"{server}/mcp", json=INITIALIZE, headers=auth, timeout=10)
    assert answered.status_code == 200, answered.text
    assert answered.json()["result"]["serverInfo"]["name"] == "tollgate"


def test_only_post_is_served_and_a_get_opens_no_stream(server, tenant_a):
    # Stateless with JSON answers: the SDK would hold a GET's event stream open for good (a worker slot, a thread
    # and a database connection each).
    _, secret = _key(tenant_a.project)
    auth = {"Accept": "text/event-stream, application/json", "Authorization": f"Bearer {secret}"}
    for method in ("GET", "DELETE", "PUT"):
        response = httpx.request(method, f"{server}/mcp", headers=auth, timeout=5)
        assert response.status_code == 405, (method, response.text)
        assert response.headers["Allow"] == "POST"
        assert response.json()["error"]["code"] == "method_not_allowed"
    assert httpx.get(f"{server}/mcp", headers={"Accept": "text/event-stream"}, timeout=5).status_code == 405


def test_every_request_counts_against_the_keys_rate_limit_once(mcp_url, api, tenant_a, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 4
    api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant_a.key)
    _, secret = _key(tenant_a.project)
    listing = {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}
    version = {"MCP-Protocol-Version": "2025-06-18"}

    def post(body: dict[str, Any]) -> httpx.Response:
        headers = {**MCP_HEADERS, **version, "Authorization": f"Bearer {secret}"}
        return httpx.post(mcp_url, json=body, headers=headers, timeout=30)

    # The limit counts per minute of the clock: the seven requests must fall in one (a CI under load once took
    # them across a minute's end, and the fifth was the first of a new window).
    left = 60 - time.time() % 60
    if left < 40:
        time.sleep(left + 0.1)
    # The tool calls are counted by the transport only: the second one is the fourth request, within the limit.
    answers = [post(INITIALIZE), post(listing), post(CALL), post(CALL)]
    assert [answer.status_code for answer in answers] == [200] * 4, [answer.text for answer in answers]
    assert answers[3].json()["result"]["structuredContent"]["external_id"] == "user-1"
    for body in (listing, INITIALIZE, CALL):
        limited = post(body)
        assert limited.status_code == 429, limited.text
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60


def test_move_confirm_is_listed_only_to_a_key_that_may_confirm(mcp_url, tenant_a):
    _, without = _key(tenant_a.project, tools=list(TOOLS))
    _, able = _key(tenant_a.project, tools=list(TOOLS), can_confirm=True)
    assert _tool_names(mcp_url, without) == [name for name in TOOLS if name != "move_confirm"]
    assert _tool_names(mcp_url, able) == list(TOOLS)


def test_a_tool_outside_the_keys_scope_is_refused_and_does_nothing(mcp_url, api, tenant_a):
    api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant_a.key)
    api.post("/api/v1/features", {"key": "sso", "name": "SSO", "type": "boolean"}, key=tenant_a.key)
    key, secret = _key(tenant_a.project)  # read-only

    [result] = _call(
        mcp_url,
        secret,
        ("grant_create", {"customer": "user-1", "feature": "sso", "value": True, "reason": "vip"}),
    )

    assert refused(result) == {
        "type": "permission_error",
        "code": "tool_not_allowed",
        "message": "This key may not call grant_create.",
        "status": 403,
    }
    assert not Grant.objects.exists()
    assert tool_calls(key) == [("grant_create", "refused", "tool_not_allowed")]


def _stripe_refunds(sdk: Any, payment_intent: str) -> list[int]:
    return sorted(refund.amount for refund in sdk.v1.refunds.list({"payment_intent": payment_intent}).data)


@pytest.fixture
def paid(api, tenant_a, catalog, stripe_sdk) -> dict[str, Any]:
    """A succeeded payment of 30.00 (two credit packs, user-1) and the Stripe SDK on the emulator."""
    sdk = stripe_sdk()
    return {"payment": paid_credit_packs(api, tenant_a, sdk), "sdk": sdk}


def test_a_money_move_without_its_confirmation_moves_nothing(mcp_url, tenant_a, paid):
    payment, sdk = paid["payment"], paid["sdk"]
    asker, secret = _key(tenant_a.project, tools=["refund_request", "move_confirm"])  # may not confirm

    asked, confirmed = _call(
        mcp_url,
        secret,
        ("refund_request", {"payment": payment["id"], "reason": "duplicate order"}),
        ("move_confirm", {"confirmation_id": "mvc_guess"}),
    )

    preview = ok(asked)
    assert preview["status"] == "pending"
    assert preview["confirmation_id"].startswith("mvc_")
    assert (preview["preview"]["amount"], preview["preview"]["currency"]) == (3000, "usd")
    assert refused(confirmed)["code"] == "confirm_not_allowed"
    [_, _, again] = _call(
        mcp_url,
        secret,
        ("refund_request", {"payment": payment["id"], "reason": "duplicate order"}),
        ("refund_request", {"payment": payment["id"], "amount": 100, "reason": "goodwill"}),
        ("move_confirm", {"confirmation_id": preview["confirmation_id"]}),
    )
    assert refused(again)["code"] == "confirm_not_allowed"
    # Nothing at Stripe, nothing here: three moves wait for a confirmation.
    assert _stripe_refunds(sdk, payment["stripe_payment_intent_id"]) == []
    assert not Refund.objects.exists()
    assert Payment.objects.get(pk=payment["id"]).amount_refunded == 0
    assert set(MoveConfirmation.objects.values_list("status", flat=True)) == {"pending"}
    assert MoveConfirmation.objects.count() == 3
    assert tool_calls(asker) == [
        ("refund_request", "ok", ""),
        ("move_confirm", "refused", "confirm_not_allowed"),
        ("refund_request", "ok", ""),
        ("refund_request", "ok", ""),
        ("move_confirm", "refused", "confirm_not_allowed"),
    ]


def test_a_key_with_the_right_confirms_once_however_often_it_confirms(mcp_url, tenant_a, paid):
    payment, sdk = paid["payment"], paid["sdk"]
    _, asker = _key(tenant_a.project, tools=["refund_request"])
    confirmer, confirmer_secret = _key(tenant_a.project, tools=["move_confirm"], can_confirm=True)
    [asked] = _call(
        mcp_url, asker, ("refund_request", {"payment": payment["id"], "amount": 1200, "reason": "late"})
    )
    confirmation = ok(asked)["confirmation_id"]

    first, second = _call(
        mcp_url,
        confirmer_secret,
        ("move_confirm", {"confirmation_id": confirmation}),
        ("move_confirm", {"confirmation_id": confirmation}),
    )
    [third] = _call(mcp_url, confirmer_secret, ("move_confirm", {"confirmation_id": confirmation}))

    made = ok(first)
    assert made["status"] == "confirmed"
    assert made["decided_by"].startswith("agent_key:")
    assert ok(second) == ok(third) == made
    assert _stripe_refunds(sdk, payment["stripe_payment_intent_id"]) == [1200]
    assert Refund.objects.count() == 1
    assert Payment.objects.get(pk=payment["id"]).amount_refunded == 1200
    assert [outcome for _, outcome, _ in tool_calls(confirmer)] == ["ok", "ok", "ok"]


@pytest.mark.postgres
def test_confirmations_at_once_from_two_sessions_refund_once(mcp_url, tenant_a, paid):
    """Each request runs in a thread of its own: two confirmations of one move arrive together, and the move's
    compare-and-set lets one of them make it."""
    payment, sdk = paid["payment"], paid["sdk"]
    _, asker = _key(tenant_a.project, tools=["refund_request"])
    _, confirmer = _key(tenant_a.project, tools=["move_confirm"], can_confirm=True)
    [asked] = _call(mcp_url, asker, ("refund_request", {"payment": payment["id"], "reason": "late"}))
    confirm = {"confirmation_id": ok(asked)["confirmation_id"]}
    results: list[Any] = []

    async def one() -> None:
        async with http_session(mcp_url, confirmer) as session:
            results.append(await session.call_tool("move_confirm", confirm))

    async def together() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(one)

    anyio.run(together)

    answers = [ok(result) for result in results if not result.is_error]
    assert answers
    assert all(answer == answers[0] for answer in answers)
    assert answers[0]["status"] == "confirmed"
    # A confirmation that met the move in the making says so; none made a second one.
    assert {refused(result)["code"] for result in results if result.is_error} <= {"move_in_progress"}
    assert _stripe_refunds(sdk, payment["stripe_payment_intent_id"]) == [3000]
    assert Refund.objects.count() == 1
