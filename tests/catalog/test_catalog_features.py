"""Features: create, list, retrieve, update through the API; immutable key, type fixed once used; isolation."""

import pytest

from catalog.models import Feature
from core.models import AuditLogEntry
from tests.billing.factories import ProductFactory
from tests.entitlements.factories import FeatureFactory, ProductFeatureFactory


def _create(api, tenant, **body):
    return api.post(
        "/api/v1/features",
        {"key": "api_calls", "name": "API calls", "type": "metered", **body},
        key=tenant.key,
    )


def test_create_returns_the_feature_and_audits_it(api, tenant_a):
    response = _create(api, tenant_a, unit="call")

    assert response.status_code == 201, response.content
    body = response.json()
    feature = Feature.objects.get(project=tenant_a.project, key="api_calls")
    assert body == {
        "id": feature.pk,
        "object": "feature",
        "key": "api_calls",
        "name": "API calls",
        "type": "metered",
        "unit": "call",
        "stripe_meter_id": None,
        "stripe_meter_event_name": None,
        "usage_formula": None,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert body["id"].startswith("feat_")
    entry = AuditLogEntry.objects.get(action="feature.created", target_id=feature.pk)
    assert entry.project_id == tenant_a.project.pk
    assert entry.actor_id == tenant_a.api_key.pk
    assert entry.after == {"key": "api_calls", "name": "API calls", "type": "metered", "unit": "call"}


@pytest.mark.parametrize("feature_type", ["boolean", "metered", "credits", "allocation", "static"])
def test_every_feature_type_is_accepted(api, tenant_a, feature_type):
    response = _create(api, tenant_a, key=f"f-{feature_type}", type=feature_type)
    assert response.status_code == 201, response.content
    assert response.json()["type"] == feature_type
    assert response.json()["unit"] is None


def test_list_pages_and_filters_by_type(api, tenant_a, tenant_b):
    for key, feature_type in [("sso", "boolean"), ("seats", "allocation"), ("calls", "metered")]:
        assert _create(api, tenant_a, key=key, name=key.title(), type=feature_type).status_code == 201
    FeatureFactory(project=tenant_b.project, key="other")

    page = api.get("/api/v1/features?limit=2", key=tenant_a.key).json()
    assert [f["key"] for f in page["data"]] == ["calls", "seats"]
    assert page["has_more"] is True
    rest = api.get(
        f"/api/v1/features?limit=2&starting_after={page['data'][-1]['id']}", key=tenant_a.key
    ).json()
    assert [f["key"] for f in rest["data"]] == ["sso"]
    assert rest["has_more"] is False

    only = api.get("/api/v1/features?type=allocation", key=tenant_a.key).json()
    assert [f["key"] for f in only["data"]] == ["seats"]
    bad = api.get("/api/v1/features?type=nope", key=tenant_a.key)
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "type"


def test_retrieve_by_key_or_id(api, tenant_a):
    created = _create(api, tenant_a).json()
    by_key = api.get("/api/v1/features/api_calls", key=tenant_a.key)
    by_id = api.get(f"/api/v1/features/{created['id']}/", key=tenant_a.key)
    assert by_key.status_code == by_id.status_code == 200
    assert by_key.json() == by_id.json() == created


def test_update_name_and_unit_and_type_while_unused(api, tenant_a):
    _create(api, tenant_a)
    response = api.patch(
        "/api/v1/features/api_calls",
        {"name": "Requests", "unit": "request", "type": "credits", "key": "api_calls"},
        key=tenant_a.key,
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["unit"], body["type"], body["key"]) == (
        "Requests",
        "request",
        "credits",
        "api_calls",
    )
    entry = AuditLogEntry.objects.get(action="feature.updated")
    assert entry.before["name"] == "API calls"
    assert entry.after["name"] == "Requests"


def test_key_is_immutable(api, tenant_a):
    _create(api, tenant_a)
    response = api.patch("/api/v1/features/api_calls", {"key": "calls"}, key=tenant_a.key)
    assert response.status_code == 400
    assert response.json()["error"] | {"message": None} == {
        "type": "invalid_request_error",
        "code": "immutable_field",
        "message": None,
        "param": "key",
    }
    assert Feature.objects.get().key == "api_calls"


def test_type_is_fixed_once_a_product_uses_it(api, tenant_a):
    value = ProductFeatureFactory(project=tenant_a.project, feature__type=Feature.Type.METERED, value=10)
    response = api.patch(f"/api/v1/features/{value.feature.key}", {"type": "credits"}, key=tenant_a.key)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "feature_in_use"
    assert response.json()["error"]["param"] == "type"
    value.feature.refresh_from_db()
    assert value.feature.type == Feature.Type.METERED
    # Renaming is still fine.
    assert (
        api.patch(f"/api/v1/features/{value.feature.key}", {"name": "Calls"}, key=tenant_a.key).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"key": None}, "key", "parameter_missing"),
        ({"key": "has space"}, "key", "invalid_parameter"),
        ({"name": ""}, "name", "parameter_missing"),
        ({"type": "quota"}, "type", "invalid_parameter"),
        ({"unit": "x" * 51}, "unit", "invalid_parameter"),
        ({"limit": 5}, "limit", "unknown_parameter"),
    ],
)
def test_bad_create_is_400_and_writes_nothing(api, tenant_a, body, param, code):
    payload = {"key": "api_calls", "name": "API calls", "type": "metered", **body}
    payload = {k: v for k, v in payload.items() if v is not None}
    response = api.post("/api/v1/features", payload, key=tenant_a.key)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["code"] == code
    assert not Feature.objects.exists()
    assert not AuditLogEntry.objects.filter(action__startswith="feature.").exists()


@pytest.mark.parametrize(
    ("body", "param"),
    [({"type": "quota"}, "type"), ({"name": ""}, "name"), ({"unlimited": True}, "unlimited")],
)
def test_bad_update_is_400_and_changes_nothing(api, tenant_a, body, param):
    created = _create(api, tenant_a).json()
    response = api.patch("/api/v1/features/api_calls", body, key=tenant_a.key)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert api.get("/api/v1/features/api_calls", key=tenant_a.key).json() == created


def test_duplicate_key_is_409(api, tenant_a):
    _create(api, tenant_a)
    response = _create(api, tenant_a, name="Again")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "key_taken"
    assert Feature.objects.get().name == "API calls"


def test_another_projects_feature_is_404_and_keys_are_per_project(api, tenant_a, tenant_b):
    theirs = FeatureFactory(project=tenant_b.project, key="api_calls", name="Theirs")
    for path in ("/api/v1/features/api_calls", f"/api/v1/features/{theirs.pk}"):
        assert api.get(path, key=tenant_a.key).status_code == 404
        response = api.patch(path, {"name": "Mine now"}, key=tenant_a.key)
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.name == "Theirs"
    # The same key in another project is a different feature.
    assert _create(api, tenant_a).status_code == 201
    assert Feature.objects.filter(key="api_calls").count() == 2


def test_products_use_of_a_feature_does_not_leak_across_projects(api, tenant_a, tenant_b):
    # B's product using B's feature `api_calls` does not freeze A's feature of the same key.
    ProductFeatureFactory(
        project=tenant_b.project, feature__key="api_calls", feature__type=Feature.Type.METERED, value=1
    )
    ProductFactory(project=tenant_a.project)
    _create(api, tenant_a)
    assert api.patch("/api/v1/features/api_calls", {"type": "credits"}, key=tenant_a.key).status_code == 200
