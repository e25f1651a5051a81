"""The OpenAPI schema generates without warnings, validates, and documents bearer auth of both kinds."""

import json

from django.core.management import call_command

from catalog.models import Feature, ProductFeature
from tests.billing.test_invoice_lines import _draft
from tests.entitlements.helpers import customer, feature, product, subscribe


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


def _schema(tmp_path):
    target = tmp_path / "schema.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(target))
    return json.loads(target.read_text())


def _operations(schema, prefix="/api/v1"):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if path.startswith(prefix) and method in {"get", "post", "patch", "put", "delete"}:
                yield path, method, operation


def test_every_operation_documents_its_errors_in_the_envelope(tmp_path):
    schema = _schema(tmp_path)
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    missing = []
    for path, method, operation in _operations(schema):
        expected = {"400", "404", "429"}
        if operation.get("security"):
            expected |= {"401", "403"}  # a key is checked (the keyless pricing-page plans check none)
        if method != "get":
            expected.add("409")
        if "requestBody" in operation:
            expected |= {"413", "415"}
        for status in sorted(expected):
            if operation["responses"].get(status, {}).get("content") != error:
                missing.append(f"{method.upper()} {path} {status}")
    assert missing == []
    assert set(schema["components"]["schemas"]["Error"]["properties"]["error"]["required"]) == {
        "type",
        "code",
        "message",
        "param",
    }


def test_every_write_documents_the_idempotency_key_header_and_no_read_does(tmp_path):
    for path, method, operation in _operations(_schema(tmp_path)):
        headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
        assert headers == (["Idempotency-Key"] if method != "get" else []), (method, path)


def test_no_operation_is_described_by_the_base_views_internal_docstring(tmp_path):
    leaked = [
        f"{method} {path}"
        for path, method, operation in _operations(_schema(tmp_path))
        if "Thin views" in operation.get("description", "")
    ]
    assert leaked == []


def test_the_routes_outside_the_api_are_documented(tmp_path):
    paths = _schema(tmp_path)["paths"]
    assert sorted(p for p in paths if not p.startswith("/api/v1")) == [
        "/health",
        "/live",
        "/metrics",
        "/ready",
        "/webhooks/stripe",
        "/webhooks/stripe/{project_id}",
    ]
    assert set(paths["/ready"]["get"]["responses"]) == {"200", "503"}
    intake = paths["/webhooks/stripe"]["post"]
    assert [p["name"] for p in intake["parameters"]] == ["Stripe-Signature"]
    assert set(intake["responses"]) == {"200", "400", "413"}


def test_a_real_error_answer_matches_the_documented_envelope(tmp_path, api, tenant_a):
    import jsonschema

    def as_json_schema(node):  # OpenAPI 3.0's `nullable` is JSON Schema's type union
        if isinstance(node, dict):
            node = {k: as_json_schema(v) for k, v in node.items()}
            if node.pop("nullable", False):
                node["type"] = [node["type"], "null"]
        return node

    schema = as_json_schema(_schema(tmp_path)["components"]["schemas"]["Error"])
    for response in (
        api.get("/api/v1/payments/pay_missing", key=tenant_a.key),
        api.request("GET", "/api/v1/payments?custmer=x", key=tenant_a.key),
        api.get("/api/v1/payments", key="tg_sk_unknown"),
    ):
        jsonschema.validate(response.json(), schema)


def test_every_delete_answers_the_status_its_schema_documents(
    tmp_path, api, tenant_a, catalog, platform_key, stripe_emulator, stripe_webhooks, stripe_sdk
):
    """Each DELETE, on a real object, answers 200 with the object as it now is; the schema says so (not 204)."""
    paths = _schema(tmp_path)["paths"]
    draft = _draft(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)  # a draft invoice of one line
    api.post("/api/v1/features", {"key": "sso", "name": "SSO", "type": "boolean"}, key=tenant_a.key)
    assert (
        api.put("/api/v1/products/pro/draft", {"features": {"sso": True}}, key=tenant_a.key).status_code
        == 200
    )
    cart = api.post("/api/v1/carts", {"customer": "u1"}, key=tenant_a.key).json()
    item = api.post(f"/api/v1/carts/{cart['id']}/items", {"price": "sticker"}, key=tenant_a.key).json()
    grant = api.post(
        "/api/v1/entitlements/grants",
        {"customer": "u1", "feature": "sso", "reason": "trial"},
        key=tenant_a.key,
    ).json()
    revocation = api.post(
        "/api/v1/entitlements/revocations",
        {"customer": "u1", "feature": "sso", "reason": "abuse"},
        key=tenant_a.key,
    ).json()
    endpoint = api.post(
        "/api/v1/webhook_endpoints", {"url": "https://hooks.example.com/x", "events": ["*"]}, key=tenant_a.key
    ).json()
    own_key = api.post("/api/v1/project/api_keys", {"name": "rotation"}, key=tenant_a.key).json()
    agent_key = api.post("/api/v1/agent_keys", {"name": "bot"}, key=tenant_a.key).json()
    coupon = {"key": "spring", "percent_off": "10", "duration": "once"}
    assert api.post("/api/v1/coupons", coupon, key=tenant_a.key).status_code == 201
    platform_made = api.post(
        f"/api/v1/projects/{tenant_a.project.pk}/api_keys", {"name": "ops"}, key=platform_key
    ).json()
    clock = api.post("/api/v1/test_clocks", {"frozen_time": "2026-01-01T00:00:00Z"}, key=tenant_a.key).json()
    api.post("/api/v1/features", {"key": "calls", "name": "Calls", "type": "metered"}, key=tenant_a.key)
    threshold = api.post(
        "/api/v1/entitlements/thresholds",
        {"customer": "u1", "feature": "calls", "percent": 50},
        key=tenant_a.key,
    ).json()
    cap = api.post(
        "/api/v1/entitlements/spend_caps",
        {"customer": "u1", "feature": "calls", "cap": {"units": 10}},
        key=tenant_a.key,
    ).json()
    tokens = api.post(
        "/api/v1/features", {"key": "tokens", "name": "Tokens", "type": "credits"}, key=tenant_a.key
    )
    ProductFeature.objects.create(product=catalog.credits, feature_id=tokens.json()["id"], value=100)
    recharge = api.post(
        "/api/v1/entitlements/auto_recharges",
        {"customer": "u1", "feature": "tokens", "below": 10, "price": "credits-1000"},
        key=tenant_a.key,
    ).json()
    seats = feature(tenant_a.project, "seats", Feature.Type.ALLOCATION)
    subscribe(customer(tenant_a.project, "u9"), product(tenant_a.project, "team", {seats: 2}))
    workspace = api.post(
        "/api/v1/entitlements/entities",
        {"customer": "u9", "feature": "seats", "entity": "design"},
        key=tenant_a.key,
    ).json()
    deletes = [
        (
            "/api/v1/entitlements/entities/{entity_id}",
            f"/api/v1/entitlements/entities/{workspace['id']}",
            {"reason": "done"},
            tenant_a.key,
        ),
        (
            "/api/v1/entitlements/auto_recharges/{recharge_id}",
            f"/api/v1/entitlements/auto_recharges/{recharge['id']}",
            {},
            tenant_a.key,
        ),
        ("/api/v1/test_clocks/{test_clock}", f"/api/v1/test_clocks/{clock['id']}", {}, tenant_a.key),
        (
            "/api/v1/carts/{cart_id}/items/{item_id}",
            f"/api/v1/carts/{cart['id']}/items/{item['items'][0]['id']}",
            {},
            tenant_a.key,
        ),
        ("/api/v1/carts/{cart_id}", f"/api/v1/carts/{cart['id']}", {}, tenant_a.key),
        ("/api/v1/coupons/{coupon}", "/api/v1/coupons/spring", {}, tenant_a.key),
        (
            "/api/v1/entitlements/grants/{grant_id}",
            f"/api/v1/entitlements/grants/{grant['id']}",
            {"reason": "done"},
            tenant_a.key,
        ),
        (
            "/api/v1/entitlements/revocations/{revocation_id}",
            f"/api/v1/entitlements/revocations/{revocation['id']}",
            {"reason": "done"},
            tenant_a.key,
        ),
        (
            "/api/v1/entitlements/spend_caps/{cap_id}",
            f"/api/v1/entitlements/spend_caps/{cap['id']}",
            {"reason": "done"},
            tenant_a.key,
        ),
        (
            "/api/v1/entitlements/thresholds/{threshold_id}",
            f"/api/v1/entitlements/thresholds/{threshold['id']}",
            {},
            tenant_a.key,
        ),
        (
            "/api/v1/webhook_endpoints/{endpoint_id}",
            f"/api/v1/webhook_endpoints/{endpoint['id']}",
            {},
            tenant_a.key,
        ),
        ("/api/v1/project/api_keys/{key_id}", f"/api/v1/project/api_keys/{own_key['id']}", {}, tenant_a.key),
        ("/api/v1/products/{product}/draft", "/api/v1/products/pro/draft", {}, tenant_a.key),
        (
            "/api/v1/invoices/{invoice_id}/lines/{line_id}",
            f"/api/v1/invoices/{draft.pk}/lines/{draft.lines[0]['stripe_line_id']}",
            {"reason": "billed by mistake"},
            tenant_a.key,
        ),
        (
            "/api/v1/agent_keys/{agent_key_id}",
            f"/api/v1/agent_keys/{agent_key['id']}",
            {"reason": "rotated"},
            tenant_a.key,
        ),
        (
            "/api/v1/projects/{project_id}/api_keys/{key_id}",
            f"/api/v1/projects/{tenant_a.project.pk}/api_keys/{platform_made['id']}",
            {},
            platform_key,
        ),
    ]
    assert sorted(template for template, *_ in deletes) == sorted(p for p in paths if "delete" in paths[p])
    responses = {template: api.delete(url, body, key=key) for template, url, body, key in deletes}
    answered = {template: response.status_code for template, response in responses.items()}
    components = _schema(tmp_path)["components"]["schemas"]
    undocumented = {}
    for template, response in responses.items():
        ref = paths[template]["delete"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        documented_fields = set(components[ref.rsplit("/", 1)[1]]["properties"])
        if extra := set(response.json()) - documented_fields:
            undocumented[template] = sorted(extra)
    assert undocumented == {}  # every field a DELETE answers is in its schema (`deleted` of an endpoint too)
    documented = {
        template: sorted(s for s in paths[template]["delete"]["responses"] if s.startswith("2"))
        for template in answered
    }
    assert answered == dict.fromkeys(answered, 200)
    assert documented == {template: ["200"] for template in answered}
