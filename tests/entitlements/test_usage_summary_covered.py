"""`GET /usage` of a credits waterfall feature: Stripe's meter is told only `quantity − covered`, so what the
meter has and the estimate of what the metered price invoices leave the credits' units out, and the period
totals agree with their events."""

from tests.entitlements.test_usage_summary import _subscribe_metered, _usage


def test_usage_estimate_leaves_out_the_units_credits_paid(
    api, tenant_a, stripe_emulator, stripe_sdk, stripe_webhooks
):
    key = tenant_a.key
    for body in (
        {"key": "api_calls", "name": "API calls", "type": "metered"},
        {"key": "ai_credits", "name": "AI credits", "type": "credits"},
    ):
        assert api.post("/api/v1/features", body, key=key).status_code == 201
    value = {"limit": 10, "overage": "allowed", "credits": {"feature": "ai_credits", "cost": 1}}
    product = {"key": "api", "name": "API", "features": {"api_calls": value}}
    assert api.post("/api/v1/products", product, key=key).status_code == 201, "product"
    price = {
        "key": "api-calls",
        "product": "api",
        "currency": "usd",
        "type": "recurring",
        "interval": "month",
        "usage_type": "metered",
        "meter": "api_calls",
        "billing_scheme": "per_unit",
        "unit_amount": 2,
    }
    created = api.post("/api/v1/prices", price, key=key)
    assert created.status_code == 201, created.json()
    _subscribe_metered(api, tenant_a, stripe_sdk, stripe_webhooks, created.json()["stripe_price_id"])
    grant = {"customer": "user-1", "feature": "ai_credits", "value": 5, "reason": "promo"}
    assert api.post("/api/v1/entitlements/grants", grant, key=key).status_code == 201
    events = [{"id": "e1", "customer": "user-1", "feature": "api_calls", "quantity": 15}]
    assert api.post("/api/v1/usage/batch", {"events": events}, key=key).status_code == 200
    from entitlements.models import UsageEvent

    assert UsageEvent.objects.values_list("quantity", "covered", "meter_status").get() == (15, 5, "reported")
    body = _usage(api, tenant_a, period="current").json()
    # 15 used, 5 paid with credits: Stripe's meter is told of 10, at 2¢ → 20.
    assert body["quantity"] == 15
    assert (body["billed_quantity"], body["amount_due_estimate"]) == (10, 20)
    from entitlements.services.meter_totals import meter_totals_rebuild

    assert meter_totals_rebuild() == []
