"""Every timestamp in every API answer is ISO 8601 in UTC ending in `Z`: one sweep over every GET operation of the
OpenAPI schema, on a project that has a catalog, a renewed subscription, grants, credits, a cart, a webhook
endpoint with deliveries and events with `previous_attributes`. Times written by hand (metrics windows,
`previous_attributes`) and by serializers alike are walked, at any depth."""

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from billing.models import Invoice, Subscription
from catalog.models import Feature, ProductFeature
from events.models import Delivery, Event, WebhookEndpoint
from tests.e2e.test_subscription_lifecycle import _subscribe
from tests.events.receiver import Receiver

TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def _timestamps(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, value) of every string in `value` that is a timestamp; list indexes are written `[]`."""
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _timestamps(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for item in value for found in _timestamps(item, f"{path}[]")]
    if isinstance(value, str) and TIMESTAMP.fullmatch(value):
        return [(path, value)]
    return []


def _get_operations() -> list[tuple[str, set[str]]]:
    """Every GET path of the schema, with the query parameters it takes."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (path, {p["name"] for p in operations["get"].get("parameters", []) if p["in"] == "query"})
        for path, operations in schema["paths"].items()
        if "get" in operations
    )


def test_every_timestamp_of_every_answer_ends_in_z(
    api, tenant_a, platform_key, catalog, stripe_emulator, stripe_webhooks, receiver
):
    key = tenant_a.key
    assert (
        api.post("/api/v1/webhook_endpoints", {"url": receiver.url, "events": ["*"]}, key=key).status_code
        == 201
    )
    api.post("/api/v1/features", {"key": "ai_credits", "name": "AI credits", "type": "credits"}, key=key)
    api.post("/api/v1/features", {"key": "api_calls", "name": "API calls", "type": "metered"}, key=key)
    expires = (timezone.now() + timedelta(days=30)).isoformat()
    coupon = {"key": "launch", "percent_off": "25", "duration": "once", "redeem_by": expires}
    assert api.post("/api/v1/coupons", coupon, key=key).status_code == 201
    promotion = {"code": "LAUNCH25", "coupon": "launch", "expires_at": expires}
    assert api.post("/api/v1/promotion_codes", promotion, key=key).status_code == 201
    grant = {
        "customer": "user-1",
        "feature": "ai_credits",
        "value": 50,
        "reason": "goodwill",
        "expires_at": expires,
    }
    assert api.post("/api/v1/entitlements/grants", grant, key=key).status_code == 201
    hold = {"id": "job-1", "customer": "user-1", "feature": "ai_credits", "quantity": 5}
    assert api.post("/api/v1/entitlements/holds", hold, key=key).json()["allowed"] is True
    ai_credits = Feature.objects.get(project=tenant_a.project, key="ai_credits")
    ProductFeature.objects.create(product=catalog.credits, feature=ai_credits, value=1000)
    recharge = {"customer": "user-1", "feature": "ai_credits", "below": 0, "price": "credits-1000"}
    recharge = api.post("/api/v1/entitlements/auto_recharges", recharge, key=key).json()
    cart = api.post("/api/v1/carts", {"customer": "user-1"}, key=key).json()
    cost_table = {
        "currency": "usd",
        "models": {"gpt-4o": {"input_tokens": {"micros": 2500000, "per": 1000000}}},
    }
    cost_table = api.post("/api/v1/cost_tables", cost_table, key=key).json()
    clock = api.post("/api/v1/test_clocks", {"frozen_time": "2026-01-15T00:00:00Z"}, key=key).json()
    checkout = _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    # A renewal: the subscription's period moves, so its `subscription.updated` names the old period's times.
    stripe_emulator.advance(32 * 86400)
    stripe_webhooks.deliver()
    assert Invoice.objects.count() == 2
    credited = Invoice.objects.get(status="paid", billing_reason="subscription_create")
    credit_note = api.post(
        f"/api/v1/invoices/{credited.pk}/credit_notes", {"amount": 100, "refund_amount": 100}, key=key
    )
    assert credit_note.status_code == 201, credit_note.content
    subscription = Subscription.objects.get()
    event = Event.objects.filter(project=tenant_a.project, previous_attributes__has_key="current_period_end")
    assert event.exists()
    assert Delivery.objects.filter(last_attempt_at__isnull=False).exists()
    endpoint = WebhookEndpoint.objects.get()
    adoption = {"dry_run": True, "customer_key": {"field": "email"}, "mapping": {}}
    adoption = api.post(
        f"/api/v1/projects/{tenant_a.project.pk}/adoptions", adoption, key=platform_key
    ).json()

    usage = {"id": "call-1", "customer": "user-1", "feature": "api_calls", "quantity": 3}
    assert api.post("/api/v1/usage", usage, key=key).status_code == 201
    fix = {"id": "fix-1", "event": "call-1", "action": "amend", "quantity": 2, "reason": "double count"}
    assert api.post("/api/v1/usage/corrections", fix, key=key).status_code == 201
    drafted = api.put("/api/v1/products/pro/draft", {"features": {}}, key=key)  # its updated_at
    assert drafted.status_code == 200, drafted.content
    ids = {
        "cart_id": cart["id"],
        "session_id": checkout["id"],
        "customer_id": "user-1",
        "event_id": event.first().pk,  # type: ignore[union-attr]
        "feature": "ai_credits",
        "invoice_id": Invoice.objects.first().pk,  # type: ignore[union-attr]
        "payment_id": checkout["payment"],
        "price": "pro-monthly",
        "product": "pro",
        "project_id": tenant_a.project.pk,
        "subscription_id": subscription.pk,
        "endpoint_id": endpoint.pk,
        "slug": tenant_a.project.slug,  # the keyless pricing-page plans
        "coupon": "launch",
        "test_clock": clock["id"],
        "hold_id": "job-1",
        "recharge_id": recharge["id"],
        "run_id": adoption["id"],
        "table_id": cost_table["id"],
        "credit_note_id": credit_note.json()["id"],
        "correction_id": "fix-1",
    }
    query = {"customer": "user-1", "feature": "ai_credits"}
    usage_query = {**query, "feature": "api_calls"}  # usage is of a metered feature
    seen: dict[str, set[str]] = {}
    for template, takes in _get_operations():
        path = template.format(**ids)
        platform = path.startswith("/api/v1/projects")
        given = usage_query if template == "/api/v1/usage" else query
        params = {name: value for name, value in given.items() if name in takes}
        response = api.get(path, key=platform_key if platform else key, json_body=params or None)
        if response.streaming:  # a streamed document (a customer's export)
            body = json.loads(b"".join(response.streaming_content))
        else:
            assert response.status_code == 200, (path, response.content)
            if not response["Content-Type"].startswith("application/json"):
                continue
            body = response.json()
        assert response.status_code == 200, path
        for field, value in _timestamps(body):
            seen.setdefault(f"{template} {field}", set()).add(value)

    offenders = {field: values for field, values in seen.items() if not all(v.endswith("Z") for v in values)}
    assert offenders == {}
    # The sweep reached the times that once had an offset, and the hand-written ones.
    for expected in (
        "/api/v1/webhook_endpoints/{endpoint_id} .created_at",
        "/api/v1/events/{event_id} .deliveries[].last_attempt_at",
        "/api/v1/events/{event_id} .previous_attributes.current_period_end",
        "/api/v1/metrics/revenue .from",
        "/api/v1/credits .lots[].expires_at",
        "/api/v1/entitlements .entitlements[].sources[].expires_at",
        "/api/v1/subscriptions .data[].current_period_end",
        "/api/v1/coupons/{coupon} .redeem_by",
        "/api/v1/promotion_codes .data[].expires_at",
        "/api/v1/usage .period_end",
        "/api/v1/usage/corrections/{correction_id} .period_start",
        "/api/v1/invoices .data[].lines[].period_start",
        "/api/v1/invoices/{invoice_id} .lines[].period_end",
        "/api/v1/test_clocks/{test_clock} .frozen_time",
        "/api/v1/projects/{project_id}/adoptions/{run_id} .adoption_point.at",
    ):
        assert expected in seen, sorted(seen)
