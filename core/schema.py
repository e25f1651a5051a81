"""OpenAPI generation tweaks shared by every app."""

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    """Names nested `InputSerializer`/`OutputSerializer` classes after their view (`ProjectDetailApiInput`).

    Every view declares its own nested serializers (STYLE.md), so their bare class names collide.
    """

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        cls = serializer.__class__
        qualname = cls.__qualname__
        if "." in qualname:
            owner, _, name = qualname.rpartition(".")
            return owner.replace(".", "") + name.removesuffix("Serializer")
        default: str = super().get_serializer_name(serializer, direction)
        return default

    def _map_serializer(self, serializer: Any, direction: Any, bypass_extensions: bool = False) -> Any:
        """A `StrictSerializer` refuses a parameter it does not know (400 `unknown_parameter`): its request body
        says so (`additionalProperties: false`), so a client generated from the schema knows it too."""
        from core.serializers import StrictSerializer

        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if (
            direction == "request"
            and isinstance(serializer, StrictSerializer)
            and schema.get("type") == "object"
        ):
            schema["additionalProperties"] = False
        return schema

    def _map_serializer_field(self, field: Any, direction: Any, bypass_extensions: bool = False) -> Any:
        """A required-text field trims its value and refuses what is left blank ("This field may not be blank"):
        so its schema asks for a character that is not whitespace, where nothing stricter is said already."""
        from rest_framework.fields import CharField

        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and type(field) is CharField
            and not field.allow_blank
            and field.trim_whitespace
            and schema.get("type") == "string"
            and not {"pattern", "enum", "format"} & set(schema)
        ):
            schema["pattern"] = r"\S"
        return schema

    def get_description(self) -> str:  # type: ignore[override]
        """Nothing of the view's: docstrings are written for Tollgate's developers (how the view works), the
        schema for tenant developers. Each operation states its own `summary` and `description` in its
        `@extend_schema`, which overrides this; tests/contract/test_schema_descriptions.py requires both."""
        return ""


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "code", "message", "param"],
            "properties": {
                "type": {
                    "type": "string",
                    "enum": [
                        "invalid_request_error",
                        "authentication_error",
                        "card_error",
                        "permission_error",
                        "not_found",
                        "conflict",
                        "rate_limit_error",
                        "payment_provider_error",
                        "api_error",
                    ],
                },
                "code": {"type": "string", "description": "Stable; branch on it (docs/integration.md)."},
                "message": {"type": "string", "description": "For people; never branch on it."},
                "param": {"type": "string", "nullable": True, "description": "The parameter at fault."},
                "decline_code": {
                    "type": "string",
                    "description": "Card errors only: why the card was declined.",
                },
            },
        }
    },
}

# status → (when, which operations): "all", "body" (operations that take a request body), "unsafe" (POST, PATCH,
# PUT, DELETE: Idempotency-Key conflicts).
ERROR_RESPONSES: dict[str, tuple[str, str]] = {
    "400": (
        "Invalid request: a bad or unknown parameter, a malformed body (`param` names the field).",
        "all",
    ),
    "401": ("No API key, or an unknown or revoked one.", "all"),
    "403": ("The wrong kind of key for this route, or a suspended project.", "all"),
    "404": ("No such object, or one of another project (indistinguishable).", "all"),
    "409": (
        "Conflicts with the current state (`code` says which), or the Idempotency-Key is in use or was used "
        "with another request.",
        "unsafe",
    ),
    "413": ("The request body is larger than the server accepts.", "body"),
    "415": ("The request body is not JSON.", "body"),
    "429": ("Too many requests for this key: retry after `Retry-After` seconds.", "all"),
}
UNSAFE = {"post", "put", "patch", "delete"}
KEY_ERRORS = {"401", "403"}
IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": (
        "Any unique string per logical operation (e.g. a UUID). For 24 hours the same key with the same request "
        "replays the first answer (`Idempotent-Replayed: true`) and does nothing again. An empty or blank key is "
        "refused (400 `idempotency_key_empty`, nothing done): leave the header out instead."
    ),
}


def error_responses_and_headers(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """Postprocessing hook: every operation documents the errors it can answer (the error envelope) and, when it
    changes something, the `Idempotency-Key` header it accepts."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            has_body = "requestBody" in operation
            responses = operation.setdefault("responses", {})
            for status, (description, scope) in ERROR_RESPONSES.items():
                if status in KEY_ERRORS and not operation.get("security"):
                    continue  # an operation read without a key (the public plans) never answers these
                applies = (
                    scope == "all"
                    or (scope == "unsafe" and method in UNSAFE)
                    or (scope == "body" and has_body)
                )
                if applies and status not in responses:
                    responses[status] = {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    }
            if method in UNSAFE:
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("name") == "Idempotency-Key" for p in parameters):
                    parameters.append(dict(IDEMPOTENCY_KEY))
    return result


def _plain_json(description: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"type": "object"}, "example": example}},
    }


PROBE_PATHS: dict[str, Any] = {
    "/health": {
        "get": {
            "operationId": "health",
            "tags": ["probes"],
            "security": [],
            "summary": "Health",
            "description": (
                "Answers 200 while the web process runs; no dependency is checked. No key. For load balancers "
                "that only need to know the process is there."
            ),
            "responses": {"200": _plain_json("Up.", {"status": "ok"})},
        }
    },
    "/live": {
        "get": {
            "operationId": "live",
            "tags": ["probes"],
            "security": [],
            "summary": "Liveness",
            "description": (
                "Liveness probe for an orchestrator: 200 as long as the process can answer at all, so a restart "
                "is only triggered by a hung process, never by a dependency being down. No key."
            ),
            "responses": {"200": _plain_json("Alive.", {"status": "ok"})},
        }
    },
    "/ready": {
        "get": {
            "operationId": "ready",
            "tags": ["probes"],
            "security": [],
            "summary": "Readiness",
            "description": (
                "Readiness probe: 200 when PostgreSQL, the cache and the broker answer; 503 with the checks and "
                "the list of what failed otherwise, so traffic is routed elsewhere meanwhile. No key."
            ),
            "responses": {
                "200": _plain_json("Ready.", {"status": "ok", "checks": {"database": "ok"}, "failed": []}),
                "503": _plain_json(
                    "A dependency is unavailable.",
                    {"status": "unavailable", "checks": {"database": "unavailable"}, "failed": ["database"]},
                ),
            },
        }
    },
    "/metrics": {
        "get": {
            "operationId": "metrics",
            "tags": ["probes"],
            "security": [],
            "summary": "Prometheus metrics",
            "description": (
                "Prometheus metrics (text exposition format). With `METRICS_TOKEN` set, send "
                "`Authorization: Bearer <METRICS_TOKEN>`."
            ),
            "responses": {
                "200": {
                    "description": "The metrics.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "403": {
                    "description": "Wrong or missing token.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
            },
        }
    },
}


def probe_paths(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """Postprocessing hook: the probes and `/metrics`, plain Django views outside `/api/v1`."""
    result.setdefault("paths", {}).update(PROBE_PATHS)
    return result
