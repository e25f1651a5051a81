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


def _features(api, tenant):
    for key, kind in (("sso", "boolean"), ("ai_credits", "credits"), ("exports", "metered")):
        created = api.post("/api/v1/features", {"key": key, "name": key, "type": kind}, key=tenant.key)
        assert created.status_code == 201


def test_entitlements_of_another_projects_customer_answer_only_from_the_callers_project(
    api, tenant_a, tenant_b
):
    """The same user id and feature keys in two projects: project A never sees B's grants, credits or usage."""
    _features(api, tenant_a)
    _features(api, tenant_b)
    for body in (
        {"customer": "shared-user", "feature": "sso", "reason": "b's vip"},
        {"customer": "shared-user", "feature": "ai_credits", "value": 500, "reason": "b's top-up"},
        {"customer": "shared-user", "feature": "exports", "value": 10, "reason": "b's allowance"},
    ):
        assert api.post("/api/v1/entitlements/grants", body, key=tenant_b.key).status_code == 201
    usage = {"id": "evt-1", "customer": "shared-user", "feature": "exports", "quantity": 4}
    assert api.post("/api/v1/usage", usage, key=tenant_b.key).status_code == 201

    check = api.get("/api/v1/entitlements/check?customer=shared-user&feature=sso", key=tenant_a.key).json()
    assert check["allowed"] is False
    listed = api.get("/api/v1/entitlements?customer=shared-user", key=tenant_a.key).json()
    assert {
        e["feature"]: (e["enabled"], e["used"], e["balance"], e["sources"]) for e in listed["entitlements"]
    } == {
        "ai_credits": (False, None, 0, []),
        "exports": (False, 0, None, []),
        "sso": (False, None, None, []),
    }
    assert (
        api.get("/api/v1/credits?customer=shared-user&feature=ai_credits", key=tenant_a.key).json()["balance"]
        == 0
    )
    spend = {"id": "spend-1", "customer": "shared-user", "feature": "ai_credits", "quantity": 1}
    assert api.post("/api/v1/entitlements/consume", spend, key=tenant_a.key).json()["allowed"] is False
    # The same usage id in project A is A's own first event, not a duplicate of B's.
    assert api.post("/api/v1/usage", {**usage, "quantity": 1}, key=tenant_a.key).status_code == 201

    b_credits = api.get("/api/v1/credits?customer=shared-user&feature=ai_credits", key=tenant_b.key).json()
    assert b_credits["balance"] == 500
    b_exports = api.get("/api/v1/entitlements/check?customer=shared-user&feature=exports", key=tenant_b.key)
    assert (b_exports.json()["used"], b_exports.json()["limit"]) == (4, 10)
