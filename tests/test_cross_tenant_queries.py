"""Ids passed in query strings and bodies stay inside the caller's project (the URL sweep is
tests/test_cross_tenant.py): another project's customer, price or cart is unknown here."""

import pytest

from billing.models import Cart, Payment

OK = "https://app.example.com/ok"


@pytest.mark.parametrize(
    "path", ["/api/v1/payments", "/api/v1/subscriptions", "/api/v1/invoices", "/api/v1/customers"]
)
def test_customer_filter_of_another_project_answers_only_from_the_callers_project(
    api, tenant_a, tenant_b, catalog, catalog_b, path
):
    api.post(
        "/api/v1/payments",
        {"customer": "shared-user", "price": "sticker", "flow": "intent"},
        key=tenant_b.key,
    )
    assert Payment.objects.filter(project=tenant_b.project).count() == 1
    query = (
        {"customer": "shared-user"} if path != "/api/v1/customers" else {"email": "shared-user@example.com"}
    )
    response = api.get(path, key=tenant_a.key, json_body=query)
    assert response.status_code == 200
    assert response.json()["data"] == []


def test_reference_filter_stays_in_the_project(api, tenant_a, tenant_b, catalog, catalog_b):
    api.post(
        "/api/v1/payments",
        {"customer": "u", "price": "sticker", "flow": "intent", "reference": "order-1"},
        key=tenant_b.key,
    )
    assert (
        api.get("/api/v1/payments", key=tenant_a.key, json_body={"reference": "order-1"}).json()["data"] == []
    )
    # The same reference in another project is a different payment, not a conflict.
    mine = api.post(
        "/api/v1/payments",
        {"customer": "u", "price": "sticker", "flow": "intent", "reference": "order-1"},
        key=tenant_a.key,
    )
    assert mine.status_code == 201


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/payments", lambda c: {"customer": "u", "price": c.sticker.pk, "flow": "intent"}),
        (
            "/api/v1/payments",
            lambda c: {"customer": "u", "items": [{"price": c.sticker.pk}], "flow": "intent"},
        ),
        (
            "/api/v1/checkout/item",
            lambda c: {"customer": "u", "price": c.sticker.pk, "success_url": OK, "cancel_url": OK},
        ),
        (
            "/api/v1/checkout/subscription",
            lambda c: {"customer": "u", "price": c.pro_monthly.pk, "success_url": OK, "cancel_url": OK},
        ),
        (
            "/api/v1/checkout/cart",
            lambda c: {
                "customer": "u",
                "items": [{"price": c.sticker.pk}],
                "success_url": OK,
                "cancel_url": OK,
            },
        ),
    ],
)
def test_another_projects_price_in_a_body_is_404_and_nothing_written(
    api, tenant_a, catalog, catalog_b, stripe_sdk, path, body
):
    response = api.post(path, body(catalog_b), key=tenant_a.key)
    assert response.status_code == 404
    assert Payment.objects.count() == 0
    assert len(stripe_sdk().v1.payment_intents.list().data) == 0
    assert len(stripe_sdk().v1.checkout.sessions.list().data) == 0


def test_another_projects_cart_in_a_body_is_404(api, tenant_a, tenant_b, catalog, catalog_b):
    cart = api.post("/api/v1/carts", {"customer": "u"}, key=tenant_b.key).json()
    api.post(f"/api/v1/carts/{cart['id']}/items", {"price": "sticker"}, key=tenant_b.key)
    response = api.post(
        "/api/v1/checkout/cart",
        {"customer": "u", "cart": cart["id"], "success_url": OK, "cancel_url": OK},
        key=tenant_a.key,
    )
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "cart"
    assert Cart.objects.get(pk=cart["id"]).status == "open"
    assert Payment.objects.count() == 0
