"""The cross-tenant sweep through the MCP server (tests/test_cross_tenant.py's, for the tools): project B's agent
key, with every tool and the right to confirm, names project A's customer, price, feature, grant, payment,
subscription and money move through each tool that takes one, over real HTTP with the SDK's client; every call
answers not found (404, `resource_missing`) and nothing changes in any table, but the audit rows of those calls.

Every tool of the registry must say here how it names another project's objects, so a new tool joins the sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agents.mcp_http import mcp_http_app
from agents.services.keys import agent_key_create
from agents.tools import TOOLS
from core.actors import Actor
from core.models import AuditLogEntry
from entitlements.services.grants import grant_create
from stripe_emulator.sdk import EmulatorHTTPClient
from stripe_gateway.client import install_http_client
from tests.agents.factories import MoveConfirmationFactory
from tests.agents.mcp_servers import ok, over_http, refused, serving
from tests.billing.factories import PriceFactory
from tests.billing.payment_factories import (
    CustomerFactory,
    InvoiceFactory,
    PaymentFactory,
    SubscriptionFactory,
)
from tests.entitlements.factories import FeatureFactory
from tests.test_cross_tenant import _snapshot

pytestmark = pytest.mark.django_db(transaction=True)  # the server's threads read committed rows only

URLS = {"success_url": "https://app.example.com/ok", "cancel_url": "https://app.example.com/cancel"}
REASON = "cross-tenant sweep"
Objects = dict[str, Any]

# For each tool, its calls by project B's key that name project A's objects: one per object argument, the other
# arguments B's own (a customer is named by A's id: B has a customer with the same external id, "user-1").
SWEEP: dict[str, list[Callable[[Objects], dict[str, Any]]]] = {
    "customer_lookup": [lambda o: {"customer": o["a_customer"].pk}],
    "subscriptions_list": [lambda o: {"customer": o["a_customer"].pk}],
    "invoices_list": [lambda o: {"customer": o["a_customer"].pk}],
    "usage_summary": [lambda o: {"customer": o["a_customer"].pk}],
    "entitlements_explain": [lambda o: {"customer": o["a_customer"].pk}],
    "margins_report": [lambda o: {"customer": o["a_customer"].pk}],
    "checkout_link_create": [
        lambda o: {"customer": o["a_customer"].pk, "price": o["b_price"].key, **URLS},
        lambda o: {"customer": "user-1", "price": o["a_price"].pk, **URLS},
        lambda o: {"customer": "user-1", "price": o["a_price"].key, **URLS},
    ],
    "portal_link_create": [lambda o: {"customer": o["a_customer"].pk, "return_url": URLS["success_url"]}],
    "grant_create": [
        lambda o: {"customer": o["a_customer"].pk, "feature": "sso", "value": True, "reason": REASON},
        lambda o: {"customer": "user-1", "feature": o["a_feature"].key, "value": True, "reason": REASON},
    ],
    "grant_revoke": [lambda o: {"grant": o["a_grant"].pk, "reason": REASON}],
    "refund_request": [lambda o: {"payment": o["a_payment"].pk, "reason": REASON}],
    "credit_note_request": [lambda o: {"invoice": o["a_invoice"].pk, "amount": 100, "reason": REASON}],
    "subscription_cancel_request": [lambda o: {"subscription": o["a_subscription"].pk}],
    "move_confirm": [lambda o: {"confirmation_id": o["a_confirmation"].pk}],
}


def test_every_tool_is_swept():
    assert set(SWEEP) == set(TOOLS)


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    with serving(mcp_http_app()) as base:
        yield f"{base}/mcp"


@pytest.fixture
def objects(tenant_a, tenant_b) -> Objects:
    """Project A's objects of each kind a tool names, and B's own customer, price and feature."""
    a, b = tenant_a.project, tenant_b.project
    a_customer = CustomerFactory(project=a, external_id="user-1")
    a_feature = FeatureFactory(project=a, key="priority-support")
    FeatureFactory(project=a, key="sso")
    a_price = PriceFactory(project=a, key="a-only")
    return {
        "a_customer": a_customer,
        "a_feature": a_feature,
        "a_price": a_price,
        "a_grant": grant_create(
            project=a, actor=Actor.system("tests"), external_id="user-1", feature=a_feature, reason="vip"
        ),
        "a_payment": PaymentFactory(
            project=a,
            customer=a_customer,
            status="succeeded",
            stripe_payment_intent_id="pi_tenant_a",
        ),
        "a_subscription": SubscriptionFactory(project=a, customer=a_customer, price=a_price),
        "a_invoice": InvoiceFactory(
            project=a, customer=a_customer, status="paid", total=1500, amount_paid=1500
        ),
        "a_confirmation": MoveConfirmationFactory(project=a),
        "b_customer": CustomerFactory(project=b, external_id="user-1"),
        "b_price": PriceFactory(project=b, key="b-only"),
        "b_feature": FeatureFactory(project=b, key="sso"),
    }


class _Counted(EmulatorHTTPClient):
    """The test's emulator, counting what reaches it."""

    def __init__(self, emulator: Any) -> None:
        super().__init__(emulator)
        self.reached: list[tuple[str, str]] = []

    def request(self, method: str, url: str, headers: Any, post_data: Any = None, **kwargs: Any) -> Any:
        self.reached.append((method, url))
        return super().request(method, url, headers, post_data, **kwargs)


@pytest.fixture
def stripe_reached(stripe_emulator) -> list[tuple[str, str]]:
    """Every request that reaches Stripe (the emulator) from now on."""
    counted = _Counted(stripe_emulator)
    install_http_client(counted)  # the autouse emulator fixture uninstalls it after the test
    return counted.reached


def _calls(url: str, secret: str, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    async def steps(session: Any) -> list[Any]:
        return [await session.call_tool(name, arguments) for name, arguments in calls]

    return over_http(url, secret, steps)


def test_another_projects_agent_key_gets_not_found_through_every_tool_and_changes_nothing(
    mcp_url, tenant_a, tenant_b, objects, stripe_reached
):
    key, secret = agent_key_create(
        actor=Actor.system("tests"), project=tenant_b.project, tools=list(TOOLS), can_confirm=True
    )
    calls = [(name, make(objects)) for name, makes in SWEEP.items() for make in makes]
    _calls(mcp_url, secret, [])  # B's key is warm: its last_used_at is not written again
    before = _snapshot()
    audited = AuditLogEntry.objects.count()

    results = _calls(mcp_url, secret, calls)

    for (name, arguments), result in zip(calls, results, strict=True):
        error = refused(result)
        assert (error["status"], error["type"], error["code"]) == (404, "not_found", "resource_missing"), (
            name,
            arguments,
            error,
        )
    after = _snapshot()
    audit_rows = [after.pop("core.AuditLogEntry"), before.pop("core.AuditLogEntry")]
    assert after == before
    assert len(audit_rows[0]) == audited + len(calls)
    added = AuditLogEntry.objects.order_by("created_at", "pk")[audited:]
    assert [(row.action, row.target_id, row.after["tool"], row.after["outcome"]) for row in added] == [
        ("agent.tool_call", key.pk, name, "failed") for name, _ in calls
    ]
    # Nothing reached Stripe: no checkout, no portal, no refund, no cancellation.
    assert stripe_reached == []


def test_the_sweeps_objects_are_there_for_their_own_project(mcp_url, tenant_a, objects):
    """The control: A's own key reads what the sweep names (so B's not found is isolation, not a typo)."""
    _, secret = agent_key_create(actor=Actor.system("tests"), project=tenant_a.project, tools=list(TOOLS))
    reads = [
        (name, make(objects)) for name, makes in SWEEP.items() if TOOLS[name].kind == "read" for make in makes
    ]
    results = _calls(
        mcp_url,
        secret,
        [
            *reads,
            ("refund_request", {"payment": objects["a_payment"].pk, "reason": REASON}),
            ("subscription_cancel_request", {"subscription": objects["a_subscription"].pk}),
            ("credit_note_request", {"invoice": objects["a_invoice"].pk, "amount": 100, "reason": REASON}),
            ("grant_revoke", {"grant": objects["a_grant"].pk, "reason": REASON}),
        ],
    )

    assert [ok(result) for result in results[: len(reads)]]
    assert ok(results[len(reads)])["status"] == "pending"
    assert ok(results[len(reads) + 1])["status"] == "pending"
    assert ok(results[len(reads) + 2])["status"] == "pending"
    assert ok(results[len(reads) + 3])["id"] == objects["a_grant"].pk
