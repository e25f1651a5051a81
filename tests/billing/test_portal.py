"""The customer portal: one configuration per project offering only its own prices; eligibility."""

import re
from urllib.parse import urlsplit

from catalog.models import Price
from customers.models import Customer
from projects.models import Project

RETURN = "https://app.example.com/account"


def _subscribe(api, tenant, stripe_emulator, stripe_webhooks, customer="user-1"):
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": customer, "price": "pro-monthly", "success_url": RETURN, "cancel_url": RETURN},
        key=tenant.key,
    ).json()
    stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{created['stripe_session_id']}/complete",
        query="",
        body=b"card=4242424242424242",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    stripe_webhooks.deliver()


def _publish(api, tenant, product):
    """Marks a product public: the portal offers only what the project's pricing page sells."""
    assert api.patch(f"/api/v1/products/{product}", {"public": True}, key=tenant.key).status_code == 200


def test_eligibility_reasons(api, tenant_a, catalog, stripe_emulator, stripe_webhooks):
    unknown = api.get("/api/v1/portal/eligibility", key=tenant_a.key, json_body={"customer": "nobody"}).json()
    assert unknown == {"eligible": False, "reason": "unknown_customer"}
    api.post("/api/v1/customers", {"external_id": "browser"}, key=tenant_a.key)
    no_purchase = api.get(
        "/api/v1/portal/eligibility", key=tenant_a.key, json_body={"customer": "browser"}
    ).json()
    assert no_purchase == {"eligible": False, "reason": "no_billing_account"}
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    assert api.get(
        "/api/v1/portal/eligibility", key=tenant_a.key, json_body={"customer": "user-1"}
    ).json() == {
        "eligible": True,
        "reason": None,
    }
    missing = api.get("/api/v1/portal/eligibility", key=tenant_a.key)
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "customer"


def test_portal_session_uses_a_configuration_with_only_the_projects_prices(
    api, tenant_a, tenant_b, catalog, catalog_b, stripe_sdk, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    for tenant in (tenant_a, tenant_b):
        _publish(api, tenant, "pro")
    response = api.post("/api/v1/portal", {"customer": "user-1", "return_url": RETURN}, key=tenant_a.key)
    assert response.status_code == 200, response.content
    assert urlsplit(response.json()["url"]).path.startswith("/portal/")
    project = Project.objects.get(pk=tenant_a.project.pk)
    configuration = stripe_sdk().v1.billing_portal.configurations.retrieve(
        project.stripe_portal_configuration_id
    )
    offered = {
        price for product in configuration.features.subscription_update.products for price in product.prices
    }
    assert offered == {catalog.pro_monthly.stripe_price_id, catalog.pro_monthly_eur.stripe_price_id}
    assert catalog_b.pro_monthly.stripe_price_id not in offered
    # A second session reuses the same configuration.
    api.post("/api/v1/portal", {"customer": "user-1", "return_url": RETURN}, key=tenant_a.key)
    assert len(stripe_sdk().v1.billing_portal.configurations.list().data) == 1


def test_portal_refusals_write_nothing(
    api, tenant_a, tenant_b, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    evil = api.post(
        "/api/v1/portal", {"customer": "user-1", "return_url": "https://evil.example.net/"}, key=tenant_a.key
    )
    assert evil.status_code == 400
    assert evil.json()["error"]["code"] == "redirect_not_allowed"
    other = api.post("/api/v1/portal", {"customer": "user-1", "return_url": RETURN}, key=tenant_b.key)
    assert other.status_code == 404
    assert Customer.objects.filter(project=tenant_b.project).count() == 0


def test_the_portal_configuration_names_no_product_without_a_price(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """A product with no price, or whose prices were all deactivated, is not in the configuration: Stripe's portal
    would offer it with nothing to switch to."""
    api.post("/api/v1/products", {"key": "bare", "name": "Bare"}, key=tenant_a.key)
    api.post(
        "/api/v1/prices",
        {
            "key": "gone-monthly",
            "product": "bare",
            "currency": "usd",
            "unit_amount": 900,
            "type": "recurring",
            "interval": "month",
        },
        key=tenant_a.key,
    )
    assert api.patch("/api/v1/prices/gone-monthly", {"active": False}, key=tenant_a.key).status_code == 200
    for product in ("pro", "bare"):
        _publish(api, tenant_a, product)
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    assert (
        api.post("/api/v1/portal", {"customer": "user-1", "return_url": RETURN}, key=tenant_a.key).status_code
        == 200
    )
    configuration = stripe_sdk().v1.billing_portal.configurations.retrieve(
        Project.objects.get(pk=tenant_a.project.pk).stripe_portal_configuration_id
    )
    products = configuration.features.subscription_update.products
    assert all(product.prices for product in products)
    assert {product.product for product in products} == {catalog.pro_monthly.product.stripe_product_id}


def test_the_portal_offers_only_public_plans_with_their_amounts_and_preselects_none(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """The configuration names only the project's public products (what its pricing page sells), each with an
    active licensed recurring price; the portal page offers them with what the customer would pay per period and
    preselects none. Pro (the customer's plan, not public), a public product without a price and a private one
    are not offered."""
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    team = {"key": "team", "name": "Team", "public": True}
    assert api.post("/api/v1/products", team, key=tenant_a.key).status_code == 201
    assert (
        api.post(
            "/api/v1/products", {"key": "soon", "name": "Soon", "public": True}, key=tenant_a.key
        ).status_code
        == 201
    )
    assert (
        api.post("/api/v1/products", {"key": "internal", "name": "Internal"}, key=tenant_a.key).status_code
        == 201
    )
    for key, product, amount in (("team-monthly", "team", 9000), ("internal-monthly", "internal", 100)):
        body = {"key": key, "product": product, "currency": "usd", "unit_amount": amount, "type": "recurring",
                "interval": "month"}  # fmt: skip
        assert api.post("/api/v1/prices", body, key=tenant_a.key).status_code == 201

    portal = api.post("/api/v1/portal", {"customer": "user-1", "return_url": RETURN}, key=tenant_a.key)
    assert portal.status_code == 200, portal.content
    configuration = stripe_sdk().v1.billing_portal.configurations.retrieve(
        Project.objects.get(pk=tenant_a.project.pk).stripe_portal_configuration_id
    )
    team_price = Price.objects.get(project=tenant_a.project, key="team-monthly")
    assert [(p.product, p.prices) for p in configuration.features.subscription_update.products] == [
        (team_price.product.stripe_product_id, [team_price.stripe_price_id])
    ]
    page = stripe_emulator.handle("GET", urlsplit(portal.json()["url"]).path).body.decode()
    select = re.search(r"<select [^>]*>.*?</select>", page, re.S)
    assert select is not None
    assert select.group(0).count(" selected") == 1
    assert '<option value="" selected disabled>Choose a plan</option>' in select.group(0)
    assert re.findall(r'<option value="([^"]+)">([^<]*)</option>', select.group(0)) == [
        (team_price.stripe_price_id, "Team — $90.00/month")
    ]


def test_without_public_products_the_portal_offers_no_plan_switch(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    portal = api.post("/api/v1/portal", {"customer": "user-1", "return_url": RETURN}, key=tenant_a.key)
    configuration = stripe_sdk().v1.billing_portal.configurations.retrieve(
        Project.objects.get(pk=tenant_a.project.pk).stripe_portal_configuration_id
    )
    update = configuration.features.subscription_update
    assert (update.enabled, list(update.products or [])) == (False, [])
    page = stripe_emulator.handle("GET", urlsplit(portal.json()["url"]).path).body.decode()
    assert "Change plan" not in page
