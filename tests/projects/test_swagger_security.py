"""Swagger's Authorize dialog lists the security schemes in the schema's order: the project key, which nearly
every route takes, comes first (a project key pasted into the platform key's box, listed first, answered 401 on
every tenant route), and every operation declares the scheme it takes — none, for those read without a key."""

import json

from django.test import Client
from drf_spectacular.generators import SchemaGenerator


def _schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_the_project_key_is_the_first_scheme_and_each_route_declares_its_own():
    schema = _schema()

    assert list(schema["components"]["securitySchemes"]) == ["ProjectKey", "PlatformKey"]
    assert schema["components"]["securitySchemes"]["ProjectKey"]["description"] == (
        "A project's secret API key (`tg_sk_…`): every route but `/api/v1/projects…`."
    )
    declared = {
        (path, method): operation.get("security")
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert {key for key, security in declared.items() if security is None} == set()
    keyless = {path for (path, _), security in declared.items() if security == []}
    assert keyless == {
        "/api/v1/public/{slug}/plans",
        "/health",
        "/live",
        "/ready",
        "/metrics",
        "/webhooks/stripe",
        "/webhooks/stripe/{project_id}",
    }
    platform = {path for (path, _), security in declared.items() if security == [{"PlatformKey": []}]}
    assert "/api/v1/projects" in platform
    assert all(path.startswith("/api/v1/projects") for path in platform)
    tenant = {path for (path, _), security in declared.items() if security == [{"ProjectKey": []}]}
    assert {"/api/v1/customers", "/api/v1/subscriptions/{subscription_id}"} <= tenant
    assert len(platform) + len(tenant) + len(keyless) == len({path for path, _ in declared})


def test_the_served_schema_keeps_that_order(db):
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert list(json.loads(response.content)["components"]["securitySchemes"]) == [
        "ProjectKey",
        "PlatformKey",
    ]
