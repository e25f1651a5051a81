"""The write tools: a checkout or portal link through the REST API's services, and grants made and ended with
the key as the audited actor."""

from urllib.parse import urlsplit

import pytest

from agents.tools import ToolError, ToolRefused
from billing.models import CheckoutSession, Payment
from catalog.models import Feature
from core.models import AuditLogEntry
from entitlements.models import Grant
from tests.agents.conftest import tool_calls
from tests.e2e.test_subscription_lifecycle import _subscribe
from tests.entitlements.helpers import feature

pytestmark = pytest.mark.django_db

OK = "https://app.example.com/ok"
WRITES = [
    "checkout_link_create",
    "portal_link_create",
    "grant_create",
    "grant_revoke",
    "entitlements_explain",
]


def test_a_grant_made_and_ended_is_audited_with_the_key(api, tenant_a, agent_key, call):
    api.post("/api/v1/customers", {"external_id": "u1"}, key=tenant_a.key)
    feature(tenant_a.project, "exports", Feature.Type.METERED)
    key = agent_key(tenant_a.project, tools=WRITES)

    granted = call(
        key, "grant_create", customer="u1", feature="exports", value=50, reason="support ticket 42"
    )

    grant = Grant.objects.get()
    assert granted == {
        "id": grant.pk,
        "object": "entitlement_grant",
        "customer": "u1",
        "feature": "exports",
        "value": 50,
        "priority": None,
        "entity": None,
        "expires_at": None,
        "reason": "support ticket 42",
        "deleted": False,
        "created_at": granted["created_at"],
    }
    listed = api.get("/api/v1/entitlements", key=tenant_a.key, json_body={"customer": "u1"}).json()
    assert [(row["feature"], row["limit"]) for row in listed["entitlements"]] == [("exports", 50)]

    ended = call(key, "grant_revoke", grant=grant.pk, reason="ticket closed")

    assert (ended["id"], ended["deleted"]) == (grant.pk, True)
    assert Grant.objects.get().deleted_at is not None
    audited = AuditLogEntry.objects.filter(action__startswith="entitlement_grant.").values_list(
        "action", "actor_type", "actor_id", "actor_repr", "reason"
    )
    assert sorted(audited) == [
        ("entitlement_grant.created", "agent_key", key.pk, f"{key.prefix}…", "support ticket 42"),
        ("entitlement_grant.deleted", "agent_key", key.pk, f"{key.prefix}…", "ticket closed"),
    ]
    assert tool_calls(key) == [("grant_create", "ok", ""), ("grant_revoke", "ok", "")]


def test_a_grant_with_an_expiry_and_one_the_service_refuses(api, tenant_a, agent_key, call):
    api.post("/api/v1/customers", {"external_id": "u1"}, key=tenant_a.key)
    feature(tenant_a.project, "sso")
    key = agent_key(tenant_a.project, tools=WRITES)

    granted = call(
        key,
        "grant_create",
        customer="u1",
        feature="sso",
        reason="trial",
        expires_at="2099-01-01T00:00:00+00:00",
    )
    assert (granted["value"], granted["expires_at"]) == (True, "2099-01-01T00:00:00Z")
    with pytest.raises(ToolRefused) as naive:
        call(key, "grant_create", customer="u1", feature="sso", reason="x", expires_at="2099-01-01T00:00:00")
    assert (naive.value.code, naive.value.param) == ("invalid_arguments", "expires_at")
    with pytest.raises(ToolError) as unknown:
        call(key, "grant_create", customer="u1", feature="nope", reason="x")
    assert (unknown.value.code, unknown.value.status) == ("resource_missing", 404)
    assert Grant.objects.count() == 1


def test_a_checkout_link_for_a_recurring_price_starts_a_subscription_checkout(
    api, tenant_a, catalog, agent_key, call
):
    api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant_a.key)
    key = agent_key(tenant_a.project, tools=WRITES)

    link = call(
        key, "checkout_link_create", customer="user-1", price="pro-monthly", success_url=OK, cancel_url=OK
    )

    session = CheckoutSession.objects.get()
    assert (link["id"], link["mode"], link["status"], link["customer"]) == (
        session.pk,
        "subscription",
        "open",
        "user-1",
    )
    assert (link["amount_total"], link["currency"]) == (3000, "usd")
    assert link["url"].startswith("http")
    payment = Payment.objects.get()
    assert (payment.type, payment.amount, payment.customer.external_id) == ("subscription", 3000, "user-1")

    one_time = call(
        key, "checkout_link_create", customer="user-1", price="sticker", success_url=OK, cancel_url=OK
    )
    assert (one_time["mode"], one_time["amount_total"]) == ("payment", 200)

    with pytest.raises(ToolError) as elsewhere:
        call(
            key,
            "checkout_link_create",
            customer="user-1",
            price="sticker",
            success_url="https://evil.test/",
            cancel_url=OK,
        )
    assert (elsewhere.value.code, elsewhere.value.param) == ("redirect_not_allowed", "success_url")
    assert Payment.objects.count() == 2


def test_a_portal_link_for_a_customer_who_bought(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, agent_key, call
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    api.post("/api/v1/customers", {"external_id": "browser"}, key=tenant_a.key)
    key = agent_key(tenant_a.project, tools=WRITES)

    link = call(key, "portal_link_create", customer="user-1", return_url=OK)

    assert urlsplit(link["url"]).path.startswith("/portal/")
    with pytest.raises(ToolError) as nothing_to_manage:
        call(key, "portal_link_create", customer="browser", return_url=OK)
    assert (nothing_to_manage.value.code, nothing_to_manage.value.status) == ("no_billing_account", 409)
