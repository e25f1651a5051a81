"""A subscription's products, counted once each (issue #15): a base price and a metered overage price of the same
product are one plan, not two. Per subscription and product the units are the licensed items' quantities added
up; a product held only through metered items counts once; a metered item adds nothing to a product a licensed
item also gives. The entitlements (`GET /entitlements`) and the plan credits granted per paid period both count
that way. Driven like the demo catalog (`docs/catalog.example.yaml`'s Professional plan): subscriptions created
through `POST /subscriptions` on a saved card at the emulator, mirrored from Stripe's webhooks."""

from datetime import timedelta
from typing import Any

import pytest
import time_machine

from billing.models import Invoice, Subscription
from catalog.models import Feature
from catalog.services import products
from customers.models import Customer
from customers.services.customers import customer_ensure_stripe
from entitlements.models import CreditLot
from tests.catalog import ACTOR, price_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def professional(tenant_a, stripe_emulator):
    """The demo's Professional plan: 500,000 API calls a period, a seat per licence, SSO, 1,000 AI credits a
    period (flat) and 100 tokens per licence; its base price, a tiered seats price and its metered overage, all
    prices of the one product. `usage` is a product sold only as a metered price."""
    project = tenant_a.project
    for key, type in (
        ("api_calls", Feature.Type.METERED),
        ("seats", Feature.Type.ALLOCATION),
        ("sso", Feature.Type.BOOLEAN),
        ("ai_credits", Feature.Type.CREDITS),
        ("tokens", Feature.Type.CREDITS),
    ):
        Feature.objects.create(project=project, key=key, name=key, type=type)
    pro = products.product_create(
        project=project,
        actor=ACTOR,
        key="professional",
        name="Professional",
        features={
            "api_calls": 500_000,
            "seats": {"per_unit": 1},
            "sso": True,
            "ai_credits": 1000,
            "tokens": {"per_unit": 100},
        },
    )
    price_create(pro, "pro-monthly", 4900, interval="month")
    price_create(
        pro,
        "pro-seats-monthly",
        None,
        interval="month",
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=[{"up_to": 10, "unit_amount": 1200}, {"up_to": "inf", "unit_amount": 900, "flat_amount": 2000}],
    )
    price_create(
        pro,
        "pro-api-overage-monthly",
        None,
        interval="month",
        usage_type="metered",
        meter="api_calls",
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=[{"up_to": 500_000, "unit_amount": 0}, {"up_to": "inf", "unit_amount": 1}],
    )
    usage = products.product_create(
        project=project,
        actor=ACTOR,
        key="usage",
        name="Usage",
        features={"api_calls": 1000, "ai_credits": {"per_unit": 50}},
    )
    price_create(usage, "usage-calls", 2, interval="month", usage_type="metered", meter="api_calls")
    return pro


def _subscribe(api: Any, tenant: Any, sdk: Any, items: list[dict[str, Any]]) -> Subscription:
    api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant.key)
    stripe_customer = customer_ensure_stripe(
        customer=Customer.objects.get(project=tenant.project, external_id="user-1")
    )
    pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer}).id
    sdk.v1.customers.update(stripe_customer, {"invoice_settings": {"default_payment_method": pm}})
    created = api.post("/api/v1/subscriptions", {"customer": "user-1", "items": items}, key=tenant.key)
    assert created.status_code == 201, created.json()
    return Subscription.objects.get(pk=created.json()["id"])


def _entitlements(api: Any, tenant: Any) -> dict[str, tuple[Any, ...]]:
    response = api.get("/api/v1/entitlements", key=tenant.key, json_body={"customer": "user-1"})
    assert response.status_code == 200, response.json()
    return {
        row["feature"]: (row["enabled"], row["value"], row["limit"], row["balance"])
        for row in response.json()["entitlements"]
    }


def _ledger(api: Any, tenant: Any, feature: str) -> tuple[int, list[tuple[str, int]]]:
    response = api.get(
        "/api/v1/credits", key=tenant.key, json_body={"customer": "user-1", "feature": feature}
    )
    assert response.status_code == 200, response.json()
    return response.json()["balance"], [(e["type"], e["amount"]) for e in response.json()["ledger"]]


def test_a_base_price_and_its_metered_overage_give_the_plan_once(
    api, tenant_a, professional, stripe_sdk, stripe_webhooks
):
    """Base × 3 + the metered overage of the same product: 500,000 calls (not 1,000,000), 3 seats (not 4), the
    plan's 1,000 AI credits and 3 × 100 tokens for the period."""
    subscription = _subscribe(
        api,
        tenant_a,
        stripe_sdk(),
        [{"price": "pro-monthly", "quantity": 3}, {"price": "pro-api-overage-monthly"}],
    )
    stripe_webhooks.deliver()
    assert sorted(subscription.items.values_list("price__key", "quantity")) == [
        ("pro-api-overage-monthly", None),
        ("pro-monthly", 3),
    ]

    assert _entitlements(api, tenant_a) == {
        "ai_credits": (True, None, None, 1000),
        "api_calls": (True, 500_000, 500_000, None),
        "seats": (True, 3, 3, None),
        "sso": (True, True, None, None),
        "tokens": (True, None, None, 300),
    }
    sources = {
        row["feature"]: row["sources"]
        for row in api.get("/api/v1/entitlements", key=tenant_a.key, json_body={"customer": "user-1"}).json()[
            "entitlements"
        ]
    }
    assert [(s["type"], s["product"], s["quantity"], s["value"]) for s in sources["seats"]] == [
        ("subscription", "professional", 3, 3)
    ]
    assert _ledger(api, tenant_a, "ai_credits") == (1000, [("grant", 1000)])
    assert _ledger(api, tenant_a, "tokens") == (300, [("grant", 300)])
    check = api.get(
        "/api/v1/entitlements/check",
        key=tenant_a.key,
        json_body={"customer": "user-1", "feature": "api_calls", "quantity": 500_001},
    ).json()
    assert (check["allowed"], check["limit"]) == (False, 500_000)


def test_licensed_quantities_of_a_product_add_up_and_a_metered_only_product_counts_once(
    api, tenant_a, professional, stripe_emulator, stripe_sdk, stripe_webhooks
):
    """pro-monthly × 1 + pro-seats-monthly × 4 (both licensed, one product: 5 units) + the overage, and a
    product held only through its metered price (1 unit): 500,000 + 1,000 calls, 5 seats, 1,000 + 50 AI credits
    and 5 × 100 tokens a period, at the first invoice and again at the renewal."""
    sdk = stripe_sdk()
    subscription = _subscribe(
        api,
        tenant_a,
        sdk,
        [
            {"price": "pro-monthly"},
            {"price": "pro-seats-monthly", "quantity": 4},
            {"price": "pro-api-overage-monthly"},
            {"price": "usage-calls"},
        ],
    )
    stripe_webhooks.deliver()

    expected = {
        "ai_credits": (True, None, None, 1050),
        "api_calls": (True, 501_000, 501_000, None),
        "seats": (True, 5, 5, None),
        "sso": (True, True, None, None),
        "tokens": (True, None, None, 500),
    }
    assert _entitlements(api, tenant_a) == expected
    assert _ledger(api, tenant_a, "ai_credits") == (1050, [("grant", 1050)])
    assert _ledger(api, tenant_a, "tokens") == (500, [("grant", 500)])

    first_end = Subscription.objects.get().current_period_end
    live = sdk.v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    stripe_emulator.advance(live["items"].data[0].current_period_end - stripe_emulator.clock.now() + 60)
    stripe_webhooks.deliver()

    renewal = Invoice.objects.get(billing_reason="subscription_cycle")
    assert sorted(
        CreditLot.objects.filter(plan_period__invoice_id=renewal.pk).values_list("feature__key", "amount")
    ) == [("ai_credits", 1050), ("tokens", 500)]
    with time_machine.travel(first_end + timedelta(seconds=1)):  # the first period's lots have expired
        assert _entitlements(api, tenant_a) == expected
