"""The Stripe webhook intake in the OpenAPI schema: a plain Django view outside `/api/v1` (the raw body must reach
signature verification byte for byte), so drf-spectacular does not see it; a postprocessing hook adds it."""

from typing import Any

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}

_INTAKE = {
    "post": {
        "operationId": "stripe_webhook_receive",
        "tags": ["stripe"],
        "security": [],
        "summary": "Receive Stripe events (platform account)",
        "description": (
            "For Stripe, not for tenants: the deliveries of the platform's Stripe account, which serves every "
            "project without Stripe credentials of its own. Verified with the endpoint's signing secret "
            "(`Stripe-Signature`, 5 minutes of tolerance either way; 400 and nothing stored on failure), stored "
            "once per Stripe event id (a redelivery answers `duplicate: true`), answered at once and applied "
            "by a worker, in Stripe's order per customer. Registered by `manage.py stripe_setup_webhooks` at the "
            "pinned Stripe API version; an event rendered at another version (`api_version`) is applied from its "
            "object read again from Stripe at the pinned version, never from its body."
        ),
        "parameters": [
            {
                "in": "header",
                "name": "Stripe-Signature",
                "required": True,
                "schema": {"type": "string"},
                "description": '`t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`, as Stripe signs.',
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": (
                            "A Stripe event, as `services.stripe_event_parse` accepts it: an object within the "
                            "API's nesting limit, no NUL character."
                        ),
                        "required": ["id", "type"],
                        "properties": {
                            "id": {"type": "string", "pattern": "^evt_", "minLength": 5, "maxLength": 255},
                            "object": {"type": "string", "enum": ["event"]},
                            "type": {"type": "string", "minLength": 1, "maxLength": 100},
                            "created": {"type": "integer", "minimum": 0, "maximum": 2**53},
                            "api_version": {"type": "string", "nullable": True},
                            "data": {"type": "object", "nullable": True},
                        },
                    }
                }
            },
        },
        "responses": {
            "200": {
                "description": "Stored (or already stored: `duplicate`).",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["received", "id", "duplicate"],
                            "properties": {
                                "received": {"type": "boolean"},
                                "id": {"type": "string"},
                                "duplicate": {"type": "boolean"},
                            },
                        }
                    }
                },
            },
            "400": {
                "description": "Bad signature, stale or future timestamp, not an event, unknown project.",
                "content": _ERROR,
            },
            "413": {"description": "Body too large.", "content": _ERROR},
        },
    }
}


def stripe_intake_paths(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """Postprocessing hook (settings `SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]`)."""
    paths = result.setdefault("paths", {})
    paths["/webhooks/stripe"] = _INTAKE
    with_project = {
        "post": {
            **_INTAKE["post"],
            "operationId": "stripe_webhook_receive_for_project",
            "summary": "Receive Stripe events (a project's own account)",
            "description": (
                "For Stripe, not for tenants: the deliveries of a project that brings its own Stripe account "
                "(`project_id`), verified with that project's webhook signing secret (`Stripe-Signature`, 5 "
                "minutes of tolerance; 400 `unknown_project` or a bad signature, nothing stored). Stored once "
                "per Stripe event id, answered at once, applied by a worker. Registered by `manage.py "
                "stripe_setup_webhooks --project <slug>`."
            ),
        }
    }
    with_project["post"]["parameters"] = [
        *_INTAKE["post"]["parameters"],
        {"in": "path", "name": "project_id", "required": True, "schema": {"type": "string"}},
    ]
    paths["/webhooks/stripe/{project_id}"] = with_project
    return result
