"""Products: feature values of every type, the Stripe product behind each (checked through the official SDK
on the emulator), deactivation, replayed requests, bad input and other projects' products."""

import pytest

from catalog.models import Price, Product, ProductFeature
from core.models import AuditLogEntry
from tests.billing.factories import ProductFactory
from tests.entitlements.factories import FeatureFactory

FEATURES = [
    ("sso", "boolean"),
    ("api_calls", "metered"),
    ("ai_credits", "credits"),
    ("seats", "allocation"),
    ("support", "static"),
]


@pytest.fixture
def features(api, tenant_a):
    for key, feature_type in FEATURES:
        response = api.post(
            "/api/v1/features", {"key": key, "name": key, "type": feature_type}, key=tenant_a.key
        )
        assert response.status_code == 201


def _create(api, tenant, **body):
    return api.post("/api/v1/products", {"key": "pro", "name": "Professional", **body}, key=tenant.key)


def _stripe_products(sdk):
    return sdk.v1.products.list({"limit": 100}).data


def test_create_with_every_kind_of_feature_value(api, tenant_a, features, stripe_sdk):
    values = {
        "sso": True,
        "api_calls": None,
        "ai_credits": 1000,
        "seats": {"per_unit": 5},
        "support": {"tier": "priority", "hours": [9, 17]},
    }
    response = _create(api, tenant_a, description="For teams", features=values)

    assert response.status_code == 201, response.content
    body = response.json()
    product = Product.objects.get(project=tenant_a.project, key="pro")
    assert body == {
        "id": product.pk,
        "object": "product",
        "key": "pro",
        "name": "Professional",
        "description": "For teams",
        "active": True,
        "public": False,
        "features": values,
        "access_days": None,
        "account_cap": None,
        "stripe_product_id": product.pk,
        "version": 1,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    seats = ProductFeature.objects.get(product=product, feature__key="seats")
    assert (seats.value, seats.per_unit) == (5, True)

    stripe_product = stripe_sdk().v1.products.retrieve(product.stripe_product_id)
    assert stripe_product.name == "Professional"
    assert stripe_product.description == "For teams"
    assert stripe_product.active is True
    assert stripe_product.metadata.to_dict() == {
        "tollgate_project": tenant_a.project.pk,
        "tollgate_product": product.pk,
    }
    assert AuditLogEntry.objects.get(action="product.created").after["features"] == values


def test_list_retrieve_and_active_filter(api, tenant_a, tenant_b):
    first = _create(api, tenant_a, key="basic", name="Basic").json()
    second = _create(api, tenant_a).json()
    assert api.patch("/api/v1/products/basic", {"active": False}, key=tenant_a.key).status_code == 200
    ProductFactory(project=tenant_b.project, key="theirs")

    listed = api.get("/api/v1/products", key=tenant_a.key).json()
    assert [p["key"] for p in listed["data"]] == ["pro", "basic"]
    assert [p["key"] for p in api.get("/api/v1/products?active=true", key=tenant_a.key).json()["data"]] == [
        "pro"
    ]
    assert [p["key"] for p in api.get("/api/v1/products?active=false", key=tenant_a.key).json()["data"]] == [
        "basic"
    ]
    assert api.get("/api/v1/products?active=yes", key=tenant_a.key).json()["error"]["param"] == "active"
    assert api.get("/api/v1/products/pro", key=tenant_a.key).json() == second
    assert api.get(f"/api/v1/products/{first['id']}", key=tenant_a.key).json()["key"] == "basic"


def test_update_renames_at_stripe_and_replaces_the_feature_map(api, tenant_a, features, stripe_sdk):
    _create(api, tenant_a, description="Old", features={"sso": True, "api_calls": 10})

    response = api.patch(
        "/api/v1/products/pro",
        {"name": "Pro", "description": "", "features": {"api_calls": 20, "seats": 3}},
        key=tenant_a.key,
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["description"], body["features"]) == (
        "Pro",
        None,
        {"api_calls": 20, "seats": 3},
    )
    stripe_product = stripe_sdk().v1.products.retrieve(body["stripe_product_id"])
    assert stripe_product.name == "Pro"
    assert not stripe_product.description
    assert len(_stripe_products(stripe_sdk())) == 1
    entry = AuditLogEntry.objects.get(action="product.updated")
    assert entry.before["features"] == {"sso": True, "api_calls": 10}
    assert entry.after["features"] == {"api_calls": 20, "seats": 3}


def test_deactivation_archives_the_product_and_its_prices_at_stripe(api, tenant_a, stripe_sdk):
    _create(api, tenant_a)
    for key, amount in [("pro-monthly", 3000), ("pro-yearly", 30000)]:
        price = {"key": key, "product": "pro", "currency": "usd", "unit_amount": amount, "type": "recurring"}
        assert api.post("/api/v1/prices", {**price, "interval": "month"}, key=tenant_a.key).status_code == 201

    response = api.patch("/api/v1/products/pro", {"active": False}, key=tenant_a.key)

    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    sdk = stripe_sdk()
    assert sdk.v1.products.retrieve(response.json()["stripe_product_id"]).active is False
    assert [p.active for p in sdk.v1.prices.list({"limit": 100}).data] == [False, False]
    assert list(Price.objects.values_list("active", flat=True)) == [False, False]
    assert AuditLogEntry.objects.filter(action="price.deactivated").count() == 2
    assert AuditLogEntry.objects.filter(action="product.deactivated").count() == 1

    # Reactivating the product leaves its prices inactive, and an inactive product sells no new active price.
    assert api.patch("/api/v1/products/pro", {"active": True}, key=tenant_a.key).json()["active"] is True
    assert sdk.v1.products.retrieve(response.json()["stripe_product_id"]).active is True
    assert not Price.objects.filter(active=True).exists()


def test_idempotency_key_replays_without_a_second_stripe_product(api, tenant_a, stripe_sdk):
    headers = {"Idempotency-Key": "create-pro-1"}
    first = api.post("/api/v1/products", {"key": "pro", "name": "Pro"}, key=tenant_a.key, headers=headers)
    second = api.post("/api/v1/products", {"key": "pro", "name": "Pro"}, key=tenant_a.key, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Product.objects.count() == 1
    assert len(_stripe_products(stripe_sdk())) == 1


def test_duplicate_key_is_409_and_creates_nothing_at_stripe(api, tenant_a, stripe_sdk):
    _create(api, tenant_a)
    response = _create(api, tenant_a, name="Another")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "key_taken"
    assert len(_stripe_products(stripe_sdk())) == 1


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"features": {"nope": True}}, "features.nope", "unknown_feature"),
        ({"features": {"sso": 1}}, "features.sso", "invalid_feature_value"),
        ({"features": {"sso": None}}, "features.sso", "invalid_feature_value"),
        ({"features": {"api_calls": -1}}, "features.api_calls", "invalid_feature_value"),
        ({"features": {"api_calls": "10"}}, "features.api_calls", "invalid_feature_value"),
        ({"features": {"api_calls": 1.5}}, "features.api_calls", "invalid_feature_value"),
        ({"features": {"seats": {"per_unit": -1}}}, "features.seats", "invalid_feature_value"),
        ({"features": {"seats": {"per_unit": 1, "max": 5}}}, "features.seats", "invalid_feature_value"),
        ({"features": {"ai_credits": True}}, "features.ai_credits", "invalid_feature_value"),
        ({"features": ["sso"]}, "features", "invalid_parameter"),
        ({"key": "Not a slug!"}, "key", "invalid_parameter"),
        ({"name": None}, "name", "parameter_missing"),
        ({"active": "maybe"}, "active", "invalid_parameter"),
        ({"default_price": "x"}, "default_price", "unknown_parameter"),
        ({"access_days": 0}, "access_days", "invalid_parameter"),
        ({"access_days": 1.5}, "access_days", "invalid_parameter"),
    ],
)
def test_bad_create_is_400_and_writes_nothing(api, tenant_a, features, stripe_sdk, body, param, code):
    response = _create(api, tenant_a, **body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["code"] == code
    assert not Product.objects.exists()
    assert not ProductFeature.objects.exists()
    assert _stripe_products(stripe_sdk()) == []


def test_bad_update_is_400_and_changes_nothing(api, tenant_a, features, stripe_sdk):
    created = _create(api, tenant_a, features={"sso": True}).json()
    for body, param in [
        ({"features": {"sso": True, "api_calls": -5}}, "features.api_calls"),
        ({"key": "renamed"}, "key"),
        ({"name": ""}, "name"),
        ({"access_days": -1}, "access_days"),
    ]:
        response = api.patch("/api/v1/products/pro", {"name": "Changed", **body}, key=tenant_a.key)
        assert response.status_code == 400
        assert response.json()["error"]["param"] == param
    assert api.get("/api/v1/products/pro", key=tenant_a.key).json() == created
    assert stripe_sdk().v1.products.retrieve(created["stripe_product_id"]).name == "Professional"


def test_another_projects_product_is_404_by_key_and_id(api, tenant_a, tenant_b, stripe_sdk):
    theirs = _create(api, tenant_b).json()
    for path in ("/api/v1/products/pro", f"/api/v1/products/{theirs['id']}"):
        assert api.get(path, key=tenant_a.key).status_code == 404
        response = api.patch(path, {"name": "Hijacked", "active": False}, key=tenant_a.key)
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"
    assert api.get("/api/v1/products/pro", key=tenant_b.key).json() == theirs
    stripe_product = stripe_sdk().v1.products.retrieve(theirs["stripe_product_id"])
    assert (stripe_product.name, stripe_product.active) == ("Professional", True)
    assert api.get("/api/v1/products", key=tenant_a.key).json()["data"] == []


def test_another_projects_feature_key_in_the_body_is_unknown(api, tenant_a, tenant_b, stripe_sdk):
    FeatureFactory(project=tenant_b.project, key="sso")
    response = _create(api, tenant_a, features={"sso": True})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_feature"
    assert not Product.objects.exists()
    assert _stripe_products(stripe_sdk()) == []


def test_access_days_is_set_changed_and_cleared(api, tenant_a, features):
    created = _create(api, tenant_a, features={"sso": True}, access_days=30)
    assert created.status_code == 201, created.content
    assert created.json()["access_days"] == 30
    assert api.patch("/api/v1/products/pro", {"access_days": 7}, key=tenant_a.key).json()["access_days"] == 7
    assert api.patch("/api/v1/products/pro", {"name": "Pro"}, key=tenant_a.key).json()["access_days"] == 7
    cleared = api.patch("/api/v1/products/pro", {"access_days": None}, key=tenant_a.key).json()
    assert cleared["access_days"] is None
    changes = [
        (entry.before["access_days"], entry.after["access_days"])
        for entry in AuditLogEntry.objects.filter(action="product.updated").order_by("created_at")
    ]
    assert changes == [(30, 7), (7, 7), (7, None)]


def test_a_name_changed_back_and_forth_ends_as_the_last_one_at_stripe(api, tenant_a, catalog, stripe_sdk):
    """Product updates carry an idempotency key from the product and the values sent: the third rename sends
    what the first did, Stripe replays the first answer without applying it, and the gateway sends it again under
    a key of its own (A → B → A → B ends as B, not A)."""
    for name in ("Pro B", "Pro A", "Pro B"):
        response = api.patch("/api/v1/products/pro", {"name": name}, key=tenant_a.key)
        assert (response.status_code, response.json()["name"]) == (200, name)
    catalog.pro.refresh_from_db()
    assert stripe_sdk().v1.products.retrieve(catalog.pro.stripe_product_id).name == "Pro B"
