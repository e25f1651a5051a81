"""Carts: lines, quantities, totals in minor units, one currency, active one-time prices of the project only."""

from billing.models import Cart, CartItem


def _cart(api, tenant, customer="buyer"):
    response = api.post("/api/v1/carts", {"customer": customer}, key=tenant.key)
    assert response.status_code == 201
    return response.json()


def test_cart_lines_and_total(api, tenant_a, catalog):
    cart = _cart(api, tenant_a)
    assert cart["object"] == "cart"
    assert cart["items"] == []
    assert cart["amount_total"] == 0
    assert cart["currency"] is None

    api.post(f"/api/v1/carts/{cart['id']}/items", {"price": "credits-1000", "quantity": 2}, key=tenant_a.key)
    body = api.post(
        f"/api/v1/carts/{cart['id']}/items", {"price": catalog.sticker.pk}, key=tenant_a.key
    ).json()
    assert body["currency"] == "usd"
    assert [(i["price"], i["quantity"], i["amount"]) for i in body["items"]] == [
        ("credits-1000", 2, 3000),
        ("sticker", 1, 200),
    ]
    assert body["amount_total"] == 3200

    # Adding the same price again adds to its line.
    body = api.post(
        f"/api/v1/carts/{cart['id']}/items", {"price": "sticker", "quantity": 3}, key=tenant_a.key
    ).json()
    assert [(i["price"], i["quantity"]) for i in body["items"]] == [("credits-1000", 2), ("sticker", 4)]
    assert body["amount_total"] == 3800

    item_id = body["items"][0]["id"]
    body = api.patch(f"/api/v1/carts/{cart['id']}/items/{item_id}", {"quantity": 1}, key=tenant_a.key).json()
    assert body["amount_total"] == 2300
    body = api.delete(f"/api/v1/carts/{cart['id']}/items/{item_id}", key=tenant_a.key).json()
    assert [(i["price"], i["quantity"]) for i in body["items"]] == [("sticker", 4)]
    assert api.get(f"/api/v1/carts/{cart['id']}", key=tenant_a.key).json()["amount_total"] == 800


def test_one_currency_per_cart(api, tenant_a, catalog):
    cart = _cart(api, tenant_a)
    api.post(f"/api/v1/carts/{cart['id']}/items", {"price": "sticker"}, key=tenant_a.key)
    response = api.post(f"/api/v1/carts/{cart['id']}/items", {"price": "credits-gbp"}, key=tenant_a.key)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "currency_mismatch"
    assert CartItem.objects.filter(cart_id=cart["id"]).count() == 1


def test_inactive_and_recurring_prices_are_refused(api, tenant_a, catalog):
    cart = _cart(api, tenant_a)
    catalog.sticker.active = False
    catalog.sticker.save()
    inactive = api.post(f"/api/v1/carts/{cart['id']}/items", {"price": "sticker"}, key=tenant_a.key)
    assert inactive.status_code == 400
    assert inactive.json()["error"]["code"] == "price_inactive"
    recurring = api.post(f"/api/v1/carts/{cart['id']}/items", {"price": "pro-monthly"}, key=tenant_a.key)
    assert recurring.status_code == 400
    assert recurring.json()["error"]["code"] == "price_not_one_time"
    assert CartItem.objects.count() == 0


def test_another_projects_price_is_404(api, tenant_a, catalog, catalog_b):
    cart = _cart(api, tenant_a)
    response = api.post(
        f"/api/v1/carts/{cart['id']}/items", {"price": catalog_b.sticker.pk}, key=tenant_a.key
    )
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "price"
    assert CartItem.objects.count() == 0


def test_bad_quantity_is_400_and_writes_nothing(api, tenant_a, catalog):
    cart = _cart(api, tenant_a)
    for quantity in (0, -1, "two", 10_001):
        response = api.post(
            f"/api/v1/carts/{cart['id']}/items", {"price": "sticker", "quantity": quantity}, key=tenant_a.key
        )
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "quantity"
    assert CartItem.objects.count() == 0


def test_deleted_cart_is_gone(api, tenant_a, catalog):
    cart = _cart(api, tenant_a)
    assert api.delete(f"/api/v1/carts/{cart['id']}", key=tenant_a.key).status_code == 200
    assert api.get(f"/api/v1/carts/{cart['id']}", key=tenant_a.key).status_code == 404
    assert Cart.objects.get(pk=cart["id"]).status == "deleted"
