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


def _iso(timestamp: int) -> str:
    """A Stripe time as the API answers it: ISO 8601, UTC, ending in `Z`."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


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
            "subtotal": credit + charge,
            "discount": 0,
            "tax": 0,
            "total": credit + charge,
            "lines": [
                {
                    "description": f"Unused time on 1 × {name} after {day}",
                    "amount": credit,
                    "quantity": 1,
                    "proration": True,
                    "period_start": _iso(now),
                    "period_end": _iso(end),
                },
                {
                    "description": f"Remaining time on 3 × {name} after {day}",
                    "amount": charge,
                    "quantity": 3,
                    "proration": True,
                    "period_start": _iso(now),
                    "period_end": _iso(end),
                },
            ],
            # The request's proration_behavior decides (applied now), whatever the project's rule.
            "rule": "requested",
            "change": "upgrade",
            "effective_at": None,
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
        ({"quantity": 2, "payment_behavior": "sometimes"}, None),
        ({"quantity": 2, "automatic_tax": "maybe"}, None),
        ({"quantity": 2, "promotion_code": "NOPE"}, "promotion_code_invalid"),
        ({"quantity": 2, "unknown": 1}, "unknown_parameter"),
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


# --- The same body as the change: a promotion code and automatic tax ---------------------------------------


@pytest.fixture
def taxed(api, tenant_a, stripe_emulator, stripe_webhooks):
    """A customer in Germany (19 % VAT; the address saved by a taxed checkout) subscribed to one seat of an
    exclusive-tax EUR price (19.00 a month) without tax, and a 25 %-off promotion code usable once."""
    assert api.post("/api/v1/products", {"key": "team", "name": "Team"}, key=tenant_a.key).status_code == 201
    for price in (
        {"key": "team-monthly", "unit_amount": 1900, "type": "recurring", "interval": "month"},
        {"key": "setup", "unit_amount": 500, "type": "one_time"},
    ):
        body = {"product": "team", "currency": "eur", "tax_behavior": "exclusive", **price}
        assert api.post("/api/v1/prices", body, key=tenant_a.key).status_code == 201
    coupon = {"key": "quarter", "percent_off": "25", "duration": "forever"}
    assert api.post("/api/v1/coupons", coupon, key=tenant_a.key).status_code == 201
    promo = {"code": "QUARTER", "coupon": "quarter", "max_redemptions": 1}
    assert api.post("/api/v1/promotion_codes", promo, key=tenant_a.key).status_code == 201
    ok = "https://app.example.com/ok"
    for path, body in (
        ("item", {"price": "setup", "automatic_tax": True}),
        ("subscription", {"price": "team-monthly"}),
    ):
        created = api.post(
            f"/api/v1/checkout/{path}",
            {"customer": "user-1", "success_url": ok, "cancel_url": ok, **body},
            key=tenant_a.key,
        )
        assert created.status_code == 201, created.content
        done = stripe_emulator.handle(
            "POST",
            f"/_emulator/checkout/sessions/{created.json()['stripe_session_id']}/complete",
            body=b"card=4242424242424242&address[country]=DE",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert done.status == 200, done.body
    stripe_webhooks.deliver()
    return Subscription.objects.get()


def test_a_preview_with_a_promotion_code_and_tax_is_what_the_change_then_invoices(
    api, tenant_a, taxed, stripe_emulator, stripe_sdk, stripe_webhooks
):
    """Three seats, no prorations, 25 % off, Stripe Tax on: the next renewal bills 3 × 19.00 = 57.00, less
    14.25, plus 19 % of 42.75 (8.1225 → 8.12): 50.87. The preview redeems and turns on nothing; the change with
    the same body does, and its renewal invoice is the preview."""
    path = f"/api/v1/subscriptions/{taxed.pk}"
    body = {"quantity": 3, "proration_behavior": "none", "promotion_code": "quarter", "automatic_tax": True}
    promo_id = api.get("/api/v1/promotion_codes", key=tenant_a.key).json()["data"][0][
        "stripe_promotion_code_id"
    ]
    before = _written(stripe_sdk)

    preview = api.post(f"{path}/preview", body, key=tenant_a.key)

    assert preview.status_code == 200, preview.content
    shown = preview.json()
    assert {k: v for k, v in shown.items() if k != "lines"} == {
        "amount_due": 5087,
        "currency": "eur",
        "subtotal": 5700,
        "discount": 1425,
        "tax": 812,
        "total": 5087,
        "rule": "requested",
        "change": "upgrade",
        "effective_at": None,
    }
    assert [(line["amount"], line["quantity"], line["proration"]) for line in shown["lines"]] == [
        (5700, 3, False)
    ]
    assert _written(stripe_sdk) == before
    assert stripe_sdk().v1.promotion_codes.retrieve(promo_id).times_redeemed == 0
    live = stripe_sdk().v1.subscriptions.retrieve(taxed.stripe_subscription_id)
    assert (live.discounts, live.automatic_tax.enabled, live["items"].data[0].quantity) == ([], False, 1)

    changed = api.patch(path, body, key=tenant_a.key)
    assert changed.status_code == 200, changed.content
    stripe_webhooks.deliver()
    assert stripe_sdk().v1.promotion_codes.retrieve(promo_id).times_redeemed == 1
    stripe_emulator.advance(32 * 86_400)
    stripe_webhooks.deliver()
    renewal = Invoice.objects.get(billing_reason="subscription_cycle")
    assert (renewal.subtotal, renewal.discount, renewal.tax, renewal.total, renewal.amount_paid) == (
        5700,
        1425,
        812,
        5087,
        5087,
    )


def test_a_preview_refuses_what_the_change_refuses_and_writes_nothing(
    api, tenant_a, taxed, catalog, stripe_sdk
):
    path = f"/api/v1/subscriptions/{taxed.pk}/preview"
    untaxed = api.post("/api/v1/prices", {"key": "team-untaxed", "product": "team", "currency": "eur",
                                          "unit_amount": 900, "type": "recurring", "interval": "month"},
                       key=tenant_a.key)  # fmt: skip
    assert untaxed.status_code == 201
    before = _written(stripe_sdk)
    body = {"quantity": 2}
    for extra, status, code in (
        ({"promotion_code": "NOPE"}, 400, "promotion_code_invalid"),
        ({"automatic_tax": True, "price": "pro-monthly"}, 409, "currency_mismatch"),
    ):
        refused = api.post(path, {**body, **extra}, key=tenant_a.key)
        assert (refused.status_code, refused.json()["error"]["code"]) == (status, code), refused.content
    refused = api.post(path, {"price": "team-untaxed", "automatic_tax": True}, key=tenant_a.key)
    assert (refused.status_code, refused.json()["error"]["code"], refused.json()["error"]["param"]) == (
        400,
        "tax_behavior_unspecified",
        "automatic_tax",
    )
    assert _written(stripe_sdk) == before
