"""The customer portal: one configuration per project offering only its own prices; eligibility."""

from urllib.parse import urlsplit

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
    api, tenant_a, catalog, catalog_b, stripe_sdk, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
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
