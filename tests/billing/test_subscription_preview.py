"""`POST /api/v1/subscriptions/{id}/preview`: what a change would invoice, from Stripe's invoice preview of the
same update, and nothing written — at Stripe, in the mirror, or in the audit log."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from billing.models import Invoice, Subscription
from core.models import AuditLogEntry
from tests.e2e.test_subscription_lifecycle import _subscribe

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscribed(api, tenant_a, catalog, stripe_emulator, stripe_webhooks):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    return Subscription.objects.get()


def _prorate(amount: int, remaining: int, length: int) -> int:
    # Stripe's proration: by the second over the period, rounded half away from zero.
    value = (2 * abs(amount) * remaining + length) // (2 * length)
    return value if amount >= 0 else -value


def _written(stripe_sdk):
    """Everything a preview must leave alone: Stripe's events and invoices, our rows and audit log."""
    client = stripe_sdk()
    return (
        [e.id for e in client.v1.events.list({"limit": 100}).auto_paging_iter()],
        [i.id for i in client.v1.invoices.list({"limit": 100}).auto_paging_iter()],
        list(Subscription.objects.values_list("pk", "quantity", "price_id", "status", "updated_at")),
        Invoice.objects.count(),
        AuditLogEntry.objects.count(),
    )


def test_upgrade_preview_equals_what_the_change_then_invoices(
    api, tenant_a, catalog, subscribed, stripe_sdk, stripe_webhooks
):
    item = stripe_sdk().v1.subscriptions.retrieve(subscribed.stripe_subscription_id)["items"].data[0]
    start, end = item.current_period_start, item.current_period_end
    unit = catalog.pro_monthly.unit_amount
    path = f"/api/v1/subscriptions/{subscribed.pk}"
    body = {"quantity": 3, "proration_behavior": "always_invoice"}
    with time_machine.travel(timezone.now() + timedelta(days=10), tick=False):
        now = int(timezone.now().timestamp())
        credit, charge = _prorate(-unit, end - now, end - start), _prorate(3 * unit, end - now, end - start)
        before = _written(stripe_sdk)

        preview = api.post(f"{path}/preview", body, key=tenant_a.key)

        assert preview.status_code == 200, preview.content
        name = catalog.pro_monthly.product.name
        day = datetime.fromtimestamp(now, UTC).strftime("%d %b %Y")
        assert preview.json() == {
            "amount_due": credit + charge,
            "currency": catalog.pro_monthly.currency,
            "lines": [
                {
                    "description": f"Unused time on 1 × {name} after {day}",
                    "amount": credit,
                    "quantity": 1,
                    "proration": True,
                    "period_start": now,
                    "period_end": end,
                },
                {
                    "description": f"Remaining time on 3 × {name} after {day}",
                    "amount": charge,
                    "quantity": 3,
                    "proration": True,
                    "period_start": now,
                    "period_end": end,
                },
            ],
        }
        assert _written(stripe_sdk) == before

        changed = api.patch(path, body, key=tenant_a.key)
        assert changed.status_code == 200, changed.content
        invoice = stripe_sdk().v1.invoices.retrieve(
            stripe_sdk().v1.subscriptions.retrieve(subscribed.stripe_subscription_id).latest_invoice
        )
    assert (invoice.billing_reason, invoice.amount_paid) == ("subscription_update", credit + charge)
    assert [(line.description, line.amount) for line in invoice.lines.data] == [
        (line["description"], line["amount"]) for line in preview.json()["lines"]
    ]


def test_bad_input_is_refused_and_nothing_written(api, tenant_a, subscribed, stripe_sdk):
    path = f"/api/v1/subscriptions/{subscribed.pk}/preview"
    before = _written(stripe_sdk)
    for body, code in (
        ({}, "parameter_missing"),
        ({"quantity": 0}, None),
        ({"quantity": 2, "proration_behavior": "sometimes"}, None),
        ({"quantity": 2, "payment_behavior": "allow_incomplete"}, None),
    ):
        refused = api.post(path, body, key=tenant_a.key)
        assert refused.status_code == 400, (body, refused.content)
        if code:
            assert refused.json()["error"]["code"] == code
    assert api.post(path, {"price": "no-such-price"}, key=tenant_a.key).status_code == 404
    assert _written(stripe_sdk) == before


def test_another_projects_subscription_and_unknown_ids_are_404(api, tenant_b, subscribed, stripe_sdk):
    before = _written(stripe_sdk)
    theirs = api.post(f"/api/v1/subscriptions/{subscribed.pk}/preview", {"quantity": 3}, key=tenant_b.key)
    unknown = api.post("/api/v1/subscriptions/sub_unknown/preview", {"quantity": 3}, key=tenant_b.key)
    assert (theirs.status_code, unknown.status_code) == (404, 404)
    assert _written(stripe_sdk) == before
