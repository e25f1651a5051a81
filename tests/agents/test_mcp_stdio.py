"""`manage.py mcp_stdio`, as an MCP client on the agent's machine starts it: a subprocess, the SDK's stdio client.
It refuses to start without a live agent key in TOLLGATE_AGENT_KEY; with one, the session is that key's: its
tools only, the answers the REST API gives, a refund only once confirmed, a key revoked meanwhile refused at its
next call.

The subprocess reads the test database, so the session tests need PostgreSQL (SQLite's test database lives in the
test process's memory); it reaches the test's Stripe emulator served over HTTP.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from django.conf import settings

from agents.mcp_server import in_request_thread
from agents.services.keys import agent_key_create, agent_key_revoke
from agents.tools import READ_ONLY, TOOLS
from billing.models import Payment, Refund
from core.actors import Actor
from tests.agents.conftest import tool_calls
from tests.agents.mcp_servers import ROOT, ok, over_stdio, refused
from tests.billing.payment_factories import paid_credit_packs


def _bare_env(**extra: str) -> dict[str, str]:
    return {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        **extra,
    }


@pytest.mark.parametrize(
    ("key", "said"),
    [
        (None, "Set TOLLGATE_AGENT_KEY to an agent key"),
        ("", "Set TOLLGATE_AGENT_KEY to an agent key"),
        ("tg_sk_aprojectkeyisnotanagentkey", "TOLLGATE_AGENT_KEY is not a live agent key"),
    ],
)
def test_it_refuses_to_start_without_an_agent_key(tmp_path, key, said):
    env = _bare_env(DATABASE_URL=f"sqlite:///{tmp_path / 'none.sqlite3'}")
    if key is not None:
        env["TOLLGATE_AGENT_KEY"] = key
    run = subprocess.run(
        [sys.executable, "manage.py", "mcp_stdio"],
        cwd=ROOT,
        env=env,
        input="",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert said in run.stderr
    assert run.stdout == ""  # nothing on the protocol's channel


def _server_env(secret: str, stripe_url: str) -> dict[str, str]:
    database = settings.DATABASES["default"]
    url = f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}"
    return _bare_env(
        DATABASE_URL=f"{url}/{database['NAME']}",
        REDIS_URL=os.environ.get("REDIS_URL", ""),
        STRIPE_API_BASE=stripe_url,
        TOLLGATE_AGENT_KEY=secret,
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_session_is_its_keys_from_listing_to_a_refund_made_once(api, tenant_a, catalog, emulator_over_http):
    import stripe

    sdk = stripe.StripeClient(settings.STRIPE_SECRET_KEY, base_addresses={"api": emulator_over_http})
    payment = paid_credit_packs(api, tenant_a, sdk)  # user-1's
    customer = api.get("/api/v1/customers/user-1", key=tenant_a.key).json()
    tools = [*sorted(READ_ONLY), "refund_request", "move_confirm"]
    key, secret = agent_key_create(
        actor=Actor.system("tests"), project=tenant_a.project, tools=tools, can_confirm=True
    )

    async def steps(session: Any) -> dict[str, Any]:
        listed = [tool.name for tool in (await session.list_tools()).tools]
        looked_up = await session.call_tool("customer_lookup", {"customer": "user-1"})
        not_allowed = await session.call_tool("grant_revoke", {"grant": "grant_x", "reason": "no"})
        asked = ok(await session.call_tool("refund_request", {"payment": payment["id"], "reason": "late"}))
        own = await session.call_tool("move_confirm", {"confirmation_id": asked["confirmation_id"]})
        return {
            "listed": listed,
            "looked_up": looked_up,
            "not_allowed": not_allowed,
            "asked": asked,
            "own": own,
        }

    session = over_stdio(_server_env(secret, emulator_over_http), steps)

    assert session["listed"] == [name for name in TOOLS if name in tools]
    assert ok(session["looked_up"]) == customer
    assert refused(session["not_allowed"])["code"] == "tool_not_allowed"
    assert (session["asked"]["status"], session["asked"]["preview"]["amount"]) == ("pending", 3000)
    assert refused(session["own"])["code"] == "confirm_own_move"  # no key alone moves money
    assert Refund.objects.count() == 0

    # A second key, allowed to confirm, in a session of its own: the refund is made once, confirmed twice.
    supervisor, supervisor_secret = agent_key_create(
        actor=Actor.system("tests"), project=tenant_a.project, tools=["move_confirm"], can_confirm=True
    )
    confirm = {"confirmation_id": session["asked"]["confirmation_id"]}

    async def confirm_twice(session: Any) -> list[Any]:
        return [await session.call_tool("move_confirm", confirm) for _ in range(2)]

    first, second = (
        ok(result) for result in over_stdio(_server_env(supervisor_secret, emulator_over_http), confirm_twice)
    )
    assert first == second
    assert first["status"] == "confirmed"
    refunds = sdk.v1.refunds.list({"payment_intent": payment["stripe_payment_intent_id"]}).data
    assert [refund.amount for refund in refunds] == [3000]
    assert Refund.objects.count() == 1
    assert Payment.objects.get(pk=payment["id"]).amount_refunded == 3000
    assert [tool for tool, _, _ in tool_calls(key)] == [
        "customer_lookup",
        "grant_revoke",
        "refund_request",
        "move_confirm",
    ]
    assert [tool for tool, _, _ in tool_calls(supervisor)] == ["move_confirm", "move_confirm"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_key_revoked_during_a_session_is_refused_at_its_next_call(api, tenant_a, emulator_over_http):
    api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant_a.key)
    key, secret = agent_key_create(actor=Actor.system("tests"), project=tenant_a.project)

    async def steps(session: Any) -> list[Any]:
        before = await session.call_tool("customer_lookup", {"customer": "user-1"})
        await _revoke(key)
        after = await session.call_tool("customer_lookup", {"customer": "user-1"})
        listed = (await session.list_tools()).tools
        return [before, after, listed]

    before, after, listed = over_stdio(_server_env(secret, emulator_over_http), steps)

    assert ok(before)["external_id"] == "user-1"
    assert (refused(after)["code"], refused(after)["status"]) == ("key_revoked", 401)
    assert listed == []


async def _revoke(key: Any) -> None:
    await in_request_thread(lambda: agent_key_revoke(actor=Actor.system("tests"), agent_key=key))
