"""Input that PostgreSQL or Python's JSON decoder would fail on is refused with a clear 400 before any view runs,
and nothing is written."""

import json

import pytest

from core.parsers import MAX_JSON_DEPTH, json_depth
from customers.models import Customer

pytestmark = pytest.mark.django_db


def _error(response):
    return response.status_code, response.json()["error"]["code"], response.json()["error"]["param"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/customers/cus%00x",
        "/api/v1/payments/pay_%00",
        "/api/v1/subscriptions/subs%00",
        "/api/v1/entitlements/check%00",
    ],
)
def test_a_nul_in_the_path_is_400(api, tenant_a, path):
    response = api.get(path, key=tenant_a.key)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_characters")


def test_a_nul_in_a_query_value_is_400_naming_the_parameter(api, tenant_a):
    response = api.request("GET", "/api/v1/payments?customer=a%00b", key=tenant_a.key)
    assert _error(response) == (400, "invalid_characters", "customer")


def test_a_nul_in_a_json_string_is_400_and_writes_nothing(api, tenant_a):
    response = api.post(
        "/api/v1/customers", {"external_id": "user-1", "metadata": {"a\x00": "b"}}, key=tenant_a.key
    )
    assert _error(response) == (400, "malformed_body", None)
    assert "NUL" in response.json()["error"]["message"]
    assert Customer.objects.count() == 0


def test_json_nested_5000_levels_is_400_and_writes_nothing(client, tenant_a):
    body = '{"external_id": "user-1", "metadata": ' + "[" * 5000 + "]" * 5000 + "}"
    response = client.post(
        "/api/v1/customers",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {tenant_a.key}",
    )
    assert _error(response) == (400, "malformed_body", None)
    assert f"deeper than {MAX_JSON_DEPTH}" in response.json()["error"]["message"]
    assert Customer.objects.count() == 0


def test_json_depth_ignores_brackets_inside_strings():
    assert json_depth(json.dumps({"a": "[[[[{{{{", "b": [[1], {"c": ['\\"]]]']}]}).encode()) == 4
    assert json_depth(b"[]") == 1
    assert json_depth(b'"plain"') == 0


def test_more_than_100_items_is_400_and_writes_nothing(api, tenant_a, catalog):
    from billing.models import Payment

    body = {
        "customer": "user-1",
        "items": [{"price": "sticker", "quantity": 1}] * 101,
        "success_url": "https://app.example.com/ok",
        "cancel_url": "https://app.example.com/no",
    }
    response = api.post("/api/v1/checkout/cart", body, key=tenant_a.key)
    assert _error(response)[:2] == (400, "invalid_parameter")
    assert response.json()["error"]["param"].startswith("items")
    assert (Payment.objects.count(), Customer.objects.count()) == (0, 0)


@pytest.mark.parametrize(
    ("metadata", "why"),
    [
        ({f"k{i}": "v" for i in range(51)}, "At most 50 keys"),
        ({"a[b]": "v"}, "square brackets"),
        ({"k" * 41: "v"}, "1 to 40 characters"),
        ({"k": "v" * 501}, "500"),
    ],
)
def test_metadata_beyond_stripes_limits_is_400_and_writes_nothing(api, tenant_a, metadata, why):
    response = api.post(
        "/api/v1/customers", {"external_id": "user-1", "metadata": metadata}, key=tenant_a.key
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"].startswith("metadata")
    assert why in response.json()["error"]["message"]
    assert Customer.objects.count() == 0


def test_a_cart_holds_at_most_100_prices(api, tenant_a, catalog):
    from billing.models import CartItem
    from tests.catalog import price_create

    cart = api.post("/api/v1/carts", {"customer": "user-1"}, key=tenant_a.key).json()
    for i in range(100):
        price = price_create(catalog.credits, f"pack-{i}", 100 + i)
        added = api.post(f"/api/v1/carts/{cart['id']}/items", {"price": price.key}, key=tenant_a.key)
        assert added.status_code == 201, added.content
    full = api.post(f"/api/v1/carts/{cart['id']}/items", {"price": "sticker"}, key=tenant_a.key)
    assert _error(full) == (409, "cart_full", "price")
    assert CartItem.objects.filter(cart_id=cart["id"]).count() == 100
    again = api.post(f"/api/v1/carts/{cart['id']}/items", {"price": "pack-7"}, key=tenant_a.key)
    assert again.status_code == 201  # more of a price already in the cart is not a new line


def test_brackets_inside_strings_neither_refuse_a_flat_body_nor_hide_a_deep_one(client, tenant_a):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {tenant_a.key}"}
    flat = '{"external_id": "user-1", "metadata": {"note": "' + "[" * 40 + '"}}'
    accepted = client.post("/api/v1/customers", flat, content_type="application/json", **headers)
    assert accepted.status_code in (200, 201)
    assert Customer.objects.get().metadata == {"note": "[" * 40}

    hidden = '{"external_id": "user-2", "x": "' + "]" * 5000 + '", "y": ' + "[" * 5000 + "]" * 5000 + "}"
    refused = client.post("/api/v1/customers", hidden, content_type="application/json", **headers)
    assert _error(refused) == (400, "malformed_body", None)
    assert Customer.objects.count() == 1
