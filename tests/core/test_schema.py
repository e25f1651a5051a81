"""The OpenAPI schema generates without warnings, validates, and documents bearer auth of both kinds."""

import json

from django.core.management import call_command


def test_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.json"
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(target)
    )
    schema = json.loads(target.read_text())
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ProjectKey"]["scheme"] == "bearer"
    assert schemes["PlatformKey"]["scheme"] == "bearer"
    assert schema["paths"]["/api/v1/projects"]["post"]["security"] == [{"PlatformKey": []}]
    assert schema["paths"]["/api/v1/project"]["get"]["security"] == [{"ProjectKey": []}]
    assert not any(path.endswith("/") for path in schema["paths"])


def test_schema_and_docs_are_served(client, db):
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert (
        b"cdn." not in docs.content
    )  # assets are vendored (drf-spectacular-sidecar), the demo works offline
