"""Characterization of the JSON of subscriptions, invoices, webhook endpoints, events and deliveries: the API
answers and the `data.object` of tenant events, value for value (timestamps, nulls, integers, invoice lines).

The expected documents are written out field by field from the rows, independently of the code that renders
them, so a change of how they are rendered cannot change what tenants receive.
"""

from datetime import UTC, datetime
from typing import Any

import pytest

from billing.models import Invoice, Payment, Subscription
from events.models import Delivery, Event, WebhookEndpoint
from tests.e2e.test_subscription_lifecycle import _subscribe
from tests.events.receiver import Receiver


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def _z(value: datetime | None) -> str | None:
    """How every answer and event writes a timestamp: ISO 8601 in UTC, ending in `Z`."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def _subscription(s: Subscription) -> dict[str, Any]:
    return {
        "id": s.pk,
        "object": "subscription",
        "customer": s.customer.external_id,
        "status": s.status,
        "price": s.price.key,
        "product": s.product.key,
        "quantity": s.quantity,
        "items": [
            {
                "id": i.pk,
                "price": i.price.key,
                "product": i.product.key,
                "quantity": i.quantity,
                "usage_type": i.usage_type,
                "version": i.product_version,
            }
            for i in s.items.all()
        ],
        "current_period_start": _z(s.current_period_start),
        "current_period_end": _z(s.current_period_end),
        "cancel_at_period_end": s.cancel_at_period_end,
        "trial_end": _z(s.trial_end),
        "canceled_at": _z(s.canceled_at),
        "stripe_subscription_id": s.stripe_subscription_id,
        "created_at": _z(s.created_at),
        "discount": None,  # none redeemed here (tests/billing/test_coupons.py shows one)
        "pending_change": None,  # none scheduled here (tests/billing/test_proration_rules.py shows one)
    }


def _invoice(i: Invoice) -> dict[str, Any]:
    return {
        "id": i.pk,
        "object": "invoice",
        "customer": i.customer.external_id,
        "subscription": i.subscription_id,
        "number": i.number or None,
        "status": i.status,
        "billing_reason": i.billing_reason or None,
        "subtotal": i.subtotal,
        "discount": i.discount,
        "tax": i.tax,
        "total": i.total,
        "amount_due": i.amount_due,
        "amount_paid": i.amount_paid,
        "amount_remaining": i.amount_remaining,
        "currency": i.currency,
        "period_start": _z(i.period_start),
        "period_end": _z(i.period_end),
        "hosted_invoice_url": i.hosted_invoice_url or None,
        "invoice_pdf": i.invoice_pdf or None,
        # Stored as Stripe wrote them (Unix seconds), answered ISO 8601 like every other time; Stripe's line id is
        # answered as the line's `id` (a draft's line is edited by it).
        "lines": [
            {
                "id": line["stripe_line_id"],
                **{k: v for k, v in line.items() if k != "stripe_line_id"},
                "period_start": _z(datetime.fromtimestamp(line["period_start"], UTC)),
                "period_end": _z(datetime.fromtimestamp(line["period_end"], UTC)),
            }
            for line in i.lines
        ],
        "stripe_invoice_id": i.stripe_invoice_id,
        "created_at": _z(i.created_at),
    }


def _endpoint(e: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": e.pk,
        "object": "webhook_endpoint",
        "url": e.url,
        "events": e.events,
        "description": e.description,
        "enabled": e.enabled,
        "disabled_reason": e.disabled_reason or None,
        "failing_since": _z(e.failing_since),
        "created_at": _z(e.created_at),
    }


def _delivery(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.pk,
        "endpoint": d.endpoint_id,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": _z(d.next_attempt_at),
        "last_attempt_at": _z(d.last_attempt_at),
    }


def _event(e: Event, *, with_deliveries: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": e.pk,
        "object": "event",
        "type": e.type,
        "created": _z(e.created_at),
        "project": e.project_id,
        "sequence": e.sequence,
        "data": e.data,
    }
    if e.previous_attributes is not None:
        body["previous_attributes"] = e.previous_attributes
    if with_deliveries:
        body["deliveries"] = [_delivery(d) for d in e.deliveries.order_by("created_at")]
    return body


def test_api_answers_and_event_objects_keep_their_exact_json(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, receiver
):
    created_endpoint = api.post(
        "/api/v1/webhook_endpoints",
        {"url": receiver.url, "events": ["*"], "description": "app"},
        key=tenant_a.key,
    )
    assert created_endpoint.status_code == 201, created_endpoint.content
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)

    endpoint = WebhookEndpoint.objects.get()
    created_body = created_endpoint.json()
    assert created_body["secret"].startswith("whsec_")
    assert {k: v for k, v in created_body.items() if k != "secret"} == _endpoint(endpoint)

    subscription = Subscription.objects.select_related("customer", "price", "product").get()
    invoice = Invoice.objects.select_related("customer").get()
    assert Payment.objects.get().status == "succeeded"
    assert invoice.lines, "the first invoice has its subscription line"
    line = invoice.lines[0]
    assert set(line) == {
        "stripe_line_id",
        "type",
        "description",
        "amount",
        "currency",
        "quantity",
        "proration",
        "stripe_price_id",
        "period_start",
        "period_end",
    }
    assert isinstance(line["amount"], int)
    assert isinstance(line["period_start"], int)

    got = api.get(f"/api/v1/subscriptions/{subscription.pk}", key=tenant_a.key)
    assert got.status_code == 200
    assert got.json() == _subscription(subscription)
    assert got.json()["created_at"].endswith("Z")
    assert got.json()["trial_end"] is None
    assert got.json()["canceled_at"] is None

    listed_subscriptions = api.get("/api/v1/subscriptions", key=tenant_a.key).json()
    assert listed_subscriptions["data"] == [_subscription(subscription)]

    got = api.get(f"/api/v1/invoices/{invoice.pk}", key=tenant_a.key)
    assert got.status_code == 200
    assert got.json() == _invoice(invoice)
    assert got.json()["created_at"].endswith("Z")

    listed = api.get("/api/v1/invoices", key=tenant_a.key).json()
    assert listed["object"] == "list"
    assert listed["has_more"] is False
    assert listed["data"] == [_invoice(invoice)]

    got = api.get(f"/api/v1/webhook_endpoints/{endpoint.pk}", key=tenant_a.key)
    assert got.status_code == 200
    assert got.json() == _endpoint(endpoint)
    assert got.json()["failing_since"] is None
    assert got.json()["created_at"].endswith("Z")
    assert api.get("/api/v1/webhook_endpoints", key=tenant_a.key).json()["data"] == [_endpoint(endpoint)]

    subscription_created = Event.objects.get(project=tenant_a.project, type="subscription.created")
    assert subscription_created.data["object"] == _subscription(subscription)
    invoice_paid = Event.objects.get(project=tenant_a.project, type="invoice.paid")
    # The invoice may be announced paid before its subscription is mirrored: then it names none yet.
    announced = invoice_paid.data["object"]
    assert announced["subscription"] in (None, subscription.pk)
    assert announced == {**_invoice(invoice), "subscription": announced["subscription"]}

    assert subscription_created.deliveries.exists()
    got = api.get(f"/api/v1/events/{subscription_created.pk}", key=tenant_a.key)
    assert got.status_code == 200
    assert got.json() == _event(subscription_created, with_deliveries=True)
    assert got.json()["deliveries"] == [_delivery(d) for d in subscription_created.deliveries.all()]
    got = api.get(f"/api/v1/events/{invoice_paid.pk}", key=tenant_a.key)
    assert got.json() == _event(invoice_paid, with_deliveries=True)

    events = api.get("/api/v1/events", key=tenant_a.key, json_body={"limit": 100}).json()
    by_id = {e.pk: e for e in Event.objects.filter(project=tenant_a.project)}
    assert events["data"]
    assert all(e == _event(by_id[e["id"]], with_deliveries=False) for e in events["data"])

    patched = api.patch(f"/api/v1/webhook_endpoints/{endpoint.pk}", {"enabled": False}, key=tenant_a.key)
    endpoint.refresh_from_db()
    assert patched.json() == _endpoint(endpoint)
    rolled = api.post(f"/api/v1/webhook_endpoints/{endpoint.pk}/roll_secret", {}, key=tenant_a.key).json()
    endpoint.refresh_from_db()
    assert {k: v for k, v in rolled.items() if k != "secret"} == _endpoint(endpoint)
    assert rolled["secret"].startswith("whsec_")
    redelivered = api.post(f"/api/v1/events/{invoice_paid.pk}/redeliver", key=tenant_a.key)
    assert redelivered.status_code == 202
    assert redelivered.json() == _event(invoice_paid, with_deliveries=True)
    deleted = api.delete(f"/api/v1/webhook_endpoints/{endpoint.pk}", key=tenant_a.key)
    assert deleted.json() == {**_endpoint(endpoint), "deleted": True}
