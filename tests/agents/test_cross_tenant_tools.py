"""The cross-tenant sweep, extended to the tools: project B's agent key — every tool, and the right to confirm —
gets "not found" for each of project A's objects (customer by A's id for it or ours, payment, subscription,
grant, confirmation) through every tool, and nothing changes anywhere (its own audited tool calls aside), nor at
Stripe. A new tool must join the sweep (`test_every_tool_is_swept`)."""

from typing import Any

import pytest

from agents.tools import TOOLS, ToolError
from billing.models import Payment
from catalog.models import Feature
from core.actors import Actor
from entitlements.services.grants import grant_create
from tests.agents.factories import MoveConfirmationFactory
from tests.billing.payment_factories import InvoiceFactory, SubscriptionFactory, paid_credit_packs
from tests.entitlements.helpers import feature
from tests.test_cross_tenant import _snapshot

pytestmark = pytest.mark.django_db

OK = "https://app.example.com/ok"
CUSTOMER_TOOLS = {
    "customer_lookup": {},
    "subscriptions_list": {},
    "invoices_list": {},
    "usage_summary": {},
    "entitlements_explain": {},
    "margins_report": {},
    "checkout_link_create": {"price": "pro-monthly", "success_url": OK, "cancel_url": OK},
    "portal_link_create": {"return_url": OK},
    "grant_create": {"feature": "sso", "reason": "x"},
}
OBJECT_TOOLS = {
    "grant_revoke": ("grant", {"reason": "x"}),
    "refund_request": ("payment", {"reason": "x"}),
    "credit_note_request": ("invoice", {"amount": 100, "reason": "x"}),
    "subscription_cancel_request": ("subscription", {}),
    "move_confirm": ("confirmation_id", {}),
}


def test_every_tool_is_swept():
    assert set(CUSTOMER_TOOLS) | set(OBJECT_TOOLS) == set(TOOLS)


@pytest.fixture
def a_objects(api, tenant_a, catalog, stripe_sdk) -> dict[str, Any]:
    """Project A's customer user-1 with a paid payment, a subscription, a paid invoice, a grant and a pending
    refund request."""
    paid = paid_credit_packs(api, tenant_a, stripe_sdk())
    payment = Payment.objects.get(pk=paid["id"])
    sso = feature(tenant_a.project, "sso", Feature.Type.BOOLEAN)
    grant = grant_create(
        project=tenant_a.project, actor=Actor.system("tests"), external_id="user-1", feature=sso, reason="a"
    )
    return {
        "customer_ids": ["user-1", payment.customer_id],
        "grant": grant.pk,
        "payment": payment.pk,
        "subscription": SubscriptionFactory(project=tenant_a.project, customer=payment.customer).pk,
        "invoice": InvoiceFactory(
            project=tenant_a.project, customer=payment.customer, status="paid", total=1500, amount_paid=1500
        ).pk,
        "confirmation_id": MoveConfirmationFactory(
            project=tenant_a.project, arguments={"payment": payment.pk, "amount": 100, "reason": "x"}
        ).pk,
        "stripe_payment_intent_id": paid["stripe_payment_intent_id"],
    }


def _calls(a_objects: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    calls = [
        (name, {"customer": customer, **extra})
        for name, extra in CUSTOMER_TOOLS.items()
        for customer in a_objects["customer_ids"]
    ]
    calls += [(name, {param: a_objects[param], **extra}) for name, (param, extra) in OBJECT_TOOLS.items()]
    return calls


def _changes(before: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    after = _snapshot()
    tool_calls = [row for row in after["core.AuditLogEntry"] if row["action"] == "agent.tool_call"]
    after["core.AuditLogEntry"] = [row for row in after["core.AuditLogEntry"] if row not in tool_calls]
    return {label: rows for label, rows in after.items() if rows != before[label]}


def test_another_projects_agent_key_finds_nothing_of_a_through_any_tool(
    tenant_a, tenant_b, catalog_b, a_objects, agent_key, call, stripe_sdk
):
    feature(tenant_b.project, "sso", Feature.Type.BOOLEAN)  # B's own catalog has what the arguments name
    b_key = agent_key(tenant_b.project, tools=list(TOOLS), can_confirm=True)
    before = _snapshot()

    answers = []
    for name, arguments in _calls(a_objects):
        with pytest.raises(ToolError) as refused:
            call(b_key, name, **arguments)
        answers.append((name, refused.value.code, refused.value.status))

    assert answers == [(name, "resource_missing", 404) for name, _ in _calls(a_objects)]
    assert _changes(before) == {}
    refunds = stripe_sdk().v1.refunds.list({"payment_intent": a_objects["stripe_payment_intent_id"]}).data
    assert refunds == []


def test_project_as_own_key_finds_the_same_objects(tenant_a, a_objects, agent_key, call):
    """The sweep's control: the objects are there, for their own project's key."""
    a_key = agent_key(tenant_a.project)
    for customer in a_objects["customer_ids"]:
        assert call(a_key, "customer_lookup", customer=customer)["external_id"] == "user-1"
        assert [row["id"] for row in call(a_key, "subscriptions_list", customer=customer)["data"]] == [
            a_objects["subscription"]
        ]
