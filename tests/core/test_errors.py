"""The error envelope: malformed bodies, wrong types, unknown routes, wrong methods, oversized bodies.

Every request here is checked for CSRF as a real client's is (Django's test client skips the check by default,
which once hid an HTML 403 page answered to every POST to an unknown route); the same table of routes and methods
is also sent over real HTTP to a live server."""

import pytest
import requests
from django.test import Client, override_settings

from projects.models import Project
from webhooks.models import StripeEvent


@pytest.fixture
def api(api):
    """The base `api` client with the CSRF check on, as every real HTTP client meets it."""
    api._client = Client(enforce_csrf_checks=True)
    return api


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


def test_an_undeclared_method_with_an_idempotency_key_is_405_and_takes_no_key(api, tenant_a):
    """The method is refused before the key is looked at: the 405 is neither a 409 for a key used before nor
    stored under the key, which stays free for the request it was meant for."""
    from core.models import IdempotencyKey

    headers = {"Idempotency-Key": "k-1"}
    for method in ("PUT", "PATCH", "DELETE", "PUT"):
        response = api.request(method, "/api/v1/customers", data=b"{}", key=tenant_a.key, headers=headers)
        assert response.status_code == 405, (method, response.content)
        assert response.json() == _method_not_allowed(method)
        assert response["Allow"] == "GET, POST, HEAD, OPTIONS"
    assert IdempotencyKey.objects.count() == 0
    created = api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant_a.key, headers=headers)
    assert created.status_code == 201, created.content


def test_an_undeclared_method_with_a_query_parameter_is_405_not_an_unknown_parameter(api, tenant_a):
    response = api.request("PUT", "/api/v1/customers?anything=1", data=b"{}", key=tenant_a.key)
    assert response.status_code == 405
    assert response.json() == _method_not_allowed("PUT")


def test_an_undeclared_method_on_a_keyless_route_is_405_not_a_server_error(api, tenant_a):
    response = api.request(
        "POST", "/api/v1/public/alpha/plans", data=b"{}", headers={"Idempotency-Key": "k-1"}
    )
    assert response.status_code == 405, response.content
    assert response.json() == _method_not_allowed("POST")
    assert response["Allow"] == "GET, HEAD, OPTIONS"


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


METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
READ = ["GET", "HEAD"]


def _not_found(message: str) -> dict[str, object]:
    return {"error": {"type": "not_found", "code": "route_not_found", "message": message, "param": None}}


def _method_not_allowed(method: str) -> dict[str, object]:
    return {
        "error": {
            "type": "invalid_request_error",
            "code": "method_not_allowed",
            "message": f'Method "{method}" not allowed.',
            "param": None,
        }
    }


def _expected(path: str, method: str) -> tuple[int, str, dict[str, object] | None, str | None]:
    """What `method` on `path` answers: (status, content type, JSON body or None when not an error, Allow)."""
    if path.startswith("/api/v1/"):
        return 404, "application/json", _not_found(f"No such route: {method} {path}."), None
    if path in {"/health", "/live", "/ready"}:
        if method in READ:
            return 200, "application/json", None, None
        return 405, "application/json", _method_not_allowed(method), "GET, HEAD"
    if path == "/metrics":
        if method in READ:
            return 200, "text/plain; version=1.0.0; charset=utf-8", None, None
        return 405, "application/json", _method_not_allowed(method), "GET, HEAD"
    if path in {"/demo/return", "/demo/pricing"}:  # routed always, 404 unless DEMO_PAGES (make demo)
        if method in READ:
            return 404, "application/json", _not_found("No such route."), None
        return 405, "application/json", _method_not_allowed(method), "GET, HEAD"
    if path == "/demo/pricing/checkout":  # the demo pricing page's backend: POST only, 404 unless DEMO_PAGES
        if method == "POST":
            return 404, "application/json", _not_found("No such route."), None
        return 405, "application/json", _method_not_allowed(method), "POST"
    if path.startswith("/webhooks/stripe"):
        if method == "POST":
            code, message = (
                ("unknown_project", "Unknown project.")
                if path.endswith("prj_unknown")
                else (
                    "invalid_signature",
                    "Invalid Stripe signature: signature mismatch or timestamp outside the tolerance.",
                )
            )
            body = {
                "error": {"type": "invalid_request_error", "code": code, "message": message, "param": None}
            }
            return 400, "application/json", body, None
        return 405, "application/json", _method_not_allowed(method), "POST"
    return 404, "application/json", _not_found("No such route."), None


ROUTES = [
    "/api/v1/nothing-here",
    "/api/v1/customers/cus_1/nothing",
    "/nothing-here",
    "/api/nothing",
    "/health",
    "/live",
    "/ready",
    "/metrics",
    "/webhooks/stripe",
    "/webhooks/stripe/prj_unknown",
    "/demo/return",
    "/demo/pricing",
    "/demo/pricing/checkout",
]
CASES = [(path, method) for path in ROUTES for method in METHODS]


@pytest.fixture
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test_methods"


@pytest.mark.parametrize(("path", "method"), CASES)
@pytest.mark.usefixtures("webhook_secret")
def test_every_method_on_unknown_routes_probes_metrics_and_the_intake_answers_the_envelope(api, path, method):
    status, content_type, body, allow = _expected(path, method)
    response = api.request(method, path, data=b"{}" if method not in READ else None)
    assert (response.status_code, response["Content-Type"]) == (status, content_type), response.content[:200]
    assert response.get("Allow") == allow
    if method == "HEAD":
        assert response.content == b""
    elif body is not None:
        assert response.json() == body
    assert StripeEvent.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.usefixtures("webhook_secret")
def test_every_method_answers_the_envelope_over_real_http(live_server):
    """The same table through a real server and a real HTTP client: CSRF middleware, no test-client shortcuts.
    One request per connection, so no server thread still holds a database session when the test ends."""
    for path, method in CASES:
        status, content_type, body, allow = _expected(path, method)
        response = requests.request(
            method,
            live_server.url + path,
            data=b"{}" if method not in READ else None,
            headers={"Content-Type": "application/json", "Connection": "close"},
            allow_redirects=False,
            timeout=10,
        )
        seen = (response.status_code, response.headers.get("Content-Type"), response.headers.get("Allow"))
        assert seen == (status, content_type, allow), (method, path, response.text[:200])
        if method == "HEAD":
            assert response.content == b""
        elif body is not None:
            assert response.json() == body, (method, path)
    assert StripeEvent.objects.count() == 0


def test_admin_keeps_django_csrf_protection(api):
    """Admin pages are for people with a session cookie: a POST without a CSRF token gets Django's 403 page."""
    response = api.request(
        "POST",
        "/admin/login/",
        data="username=a&password=b",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 403
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert b"CSRF" in response.content
