"""The error envelope: malformed bodies, wrong types, unknown routes, wrong methods, oversized bodies."""

import pytest
from django.test import override_settings

from projects.models import Project


def test_malformed_json_is_400_and_creates_nothing(api, platform_key):
    response = api.request("POST", "/api/v1/projects", data='{"slug": "x", ', key=platform_key)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "malformed_body"
    assert error["message"].startswith("Malformed request body: JSON parse error")
    assert error["param"] is None
    assert Project.objects.count() == 0


def test_body_that_is_not_an_object_is_400(api, platform_key):
    response = api.request("POST", "/api/v1/projects", data="[1, 2]", key=platform_key)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert Project.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"slug": ["a"], "name": "x"}, "slug"),
        ({"slug": "ok", "name": {"a": 1}}, "name"),
        ({"slug": "ok", "name": "x", "payment_ttl_seconds": 1.5}, "payment_ttl_seconds"),
    ],
)
def test_wrong_field_types_are_400_with_param(api, platform_key, body, param):
    response = api.post("/api/v1/projects", body, key=platform_key)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert Project.objects.count() == 0


def test_non_json_content_type_is_415(api, platform_key):
    response = api.request(
        "POST",
        "/api/v1/projects",
        data="slug=x",
        content_type="application/x-www-form-urlencoded",
        key=platform_key,
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert Project.objects.count() == 0


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/projects/x/y/z/w"])
def test_unknown_route_is_404_json(api, platform_key, path):
    response = api.get(path, key=platform_key)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["type"] == "not_found"


@override_settings(DEBUG=True)
def test_unknown_route_is_json_even_in_debug(api):
    response = api.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "route_not_found"


def test_wrong_method_is_405(api, tenant_a):
    response = api.delete("/api/v1/project", key=tenant_a.key)
    assert response.status_code == 405
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "code": "method_not_allowed",
        "message": 'Method "DELETE" not allowed.',
        "param": None,
    }


@override_settings(API_MAX_BODY_BYTES=100)
def test_oversized_body_is_413_and_creates_nothing(api, platform_key):
    body = {"slug": "big", "name": "x" * 200}
    response = api.post("/api/v1/projects", body, key=platform_key)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["code"] == "request_too_large"
    assert Project.objects.count() == 0


def test_trailing_slash_is_optional_and_never_redirects(api, platform_key):
    with_slash = api.post("/api/v1/projects/", {"slug": "slash", "name": "S"}, key=platform_key)
    without = api.post("/api/v1/projects", {"slug": "noslash", "name": "N"}, key=platform_key)
    assert with_slash.status_code == without.status_code == 201
