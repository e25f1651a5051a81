"""`GET /usage`: a metered feature's usage in the customer's current period as Tollgate counted it, as Stripe's
meter has it, and what the metered price the customer subscribes to will invoice for it — checked against the
invoice Stripe (the emulator) actually sends at the renewal."""

from datetime import UTC, datetime

import pytest

from billing.models import Subscription
from customers.models import Customer
from customers.services.customers import customer_ensure_stripe
from entitlements.models import UsageEvent

DAY = 86400


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def usage_plan(api, tenant_a):
    """A plan that gives unlimited API calls, billed in arrears: graduated, the first 100 calls at 2¢, then 1¢."""
    key = tenant_a.key
    assert (
        api.post(
            "/api/v1/features", {"key": "api_calls", "name": "API calls", "type": "metered"}, key=key
        ).status_code
        == 201
    )
    assert (
        api.post(
            "/api/v1/products", {"key": "api", "name": "API", "features": {"api_calls": None}}, key=key
        ).status_code
        == 201
    )
    price = {
        "key": "api-calls",
        "product": "api",
        "currency": "usd",
        "type": "recurring",
        "interval": "month",
        "usage_type": "metered",
        "meter": "api_calls",
        "billing_scheme": "tiered",
        "tiers_mode": "graduated",
        "tiers": [{"up_to": 100, "unit_amount": 2}, {"up_to": "inf", "unit_amount": 1}],
    }
    created = api.post("/api/v1/prices", price, key=key)
    assert created.status_code == 201, created.json()
    return created.json()


def _subscribe_metered(api, tenant_a, stripe_sdk, stripe_webhooks, price_id: str) -> tuple[str, object]:
    api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant_a.key)
    stripe_customer = customer_ensure_stripe(customer=Customer.objects.get(external_id="user-1"))
    sdk = stripe_sdk()
    pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer}).id
    sdk.v1.customers.update(stripe_customer, {"invoice_settings": {"default_payment_method": pm}})
    subscription = sdk.v1.subscriptions.create({"customer": stripe_customer, "items": [{"price": price_id}]})
    stripe_webhooks.deliver()
    return stripe_customer, subscription


def _usage(api, tenant_a, feature="api_calls", customer="user-1", **params):
    query = "&".join(f"{k}={v}" for k, v in {"customer": customer, "feature": feature, **params}.items())
    return api.get(f"/api/v1/usage?{query}", key=tenant_a.key)


def test_usage_counted_reported_and_estimated_is_what_the_renewal_invoices(
    api, tenant_a, usage_plan, stripe_emulator, stripe_sdk, stripe_webhooks
):
    _, created = _subscribe_metered(api, tenant_a, stripe_sdk, stripe_webhooks, usage_plan["stripe_price_id"])
    item = created["items"].data[0]
    start, end = item.current_period_start, item.current_period_end
    events = [
        {"id": f"e{i}", "customer": "user-1", "feature": "api_calls", "quantity": q}
        for i, q in enumerate((60, 50, 20))
    ]
    assert api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key).status_code == 200

    response = _usage(api, tenant_a, period="current")

    assert response.status_code == 200
    assert response.json() == {
        "object": "usage_summary",
        "customer": "user-1",
        "feature": "api_calls",
        "period_start": _iso(start),
        "period_end": _iso(end),
        "quantity": 130,
        "billed_quantity": 130,
        "pending_quantity": 0,
        "price": "api-calls",
        "currency": "usd",
        "amount_due_estimate": 100 * 2 + 30 * 1,
    }

    stripe_emulator.advance(end - stripe_emulator.clock.now() + 60)
    stripe_webhooks.deliver()
    renewal = stripe_sdk().v1.invoices.list({"subscription": created.id, "limit": 1}).data[0]
    # Every line is the metered price's (Stripe may split a graduated price's usage by tier): 130 calls, $2.30.
    lines = [(line.pricing.price_details.price, line.quantity, line.amount) for line in renewal.lines.data]
    assert {price for price, _, _ in lines} == {usage_plan["stripe_price_id"]}
    assert (renewal.billing_reason, sum(q for _, q, _ in lines), sum(a for _, _, a in lines)) == (
        "subscription_cycle",
        130,
        230,
    )
    invoices = api.get("/api/v1/invoices?customer=user-1", key=tenant_a.key).json()["data"]
    assert sorted((i["status"], i["amount_paid"]) for i in invoices) == [("paid", 0), ("paid", 230)]
    after = _usage(api, tenant_a).json()
    assert (after["period_start"], after["quantity"], after["amount_due_estimate"]) == (_iso(end), 0, 0)


def test_usage_not_yet_reported_is_pending_and_nobody_is_billed_without_a_metered_price(
    api, tenant_a, usage_plan
):
    api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant_a.key)
    api.post(
        "/api/v1/usage",
        {"id": "e1", "customer": "user-1", "feature": "api_calls", "quantity": 7},
        key=tenant_a.key,
    )

    body = _usage(api, tenant_a).json()

    # No Stripe customer: the meter report is skipped, and no subscription carries the metered price.
    assert UsageEvent.objects.get().meter_status == "skipped"
    assert (body["quantity"], body["billed_quantity"], body["pending_quantity"]) == (7, 0, 0)
    assert (body["price"], body["currency"], body["amount_due_estimate"]) == (None, None, 0)
    assert Subscription.objects.count() == 0


def test_a_customer_never_seen_has_zero_usage(api, tenant_a, usage_plan):
    body = _usage(api, tenant_a, customer="nobody").json()

    assert (body["customer"], body["quantity"], body["billed_quantity"], body["amount_due_estimate"]) == (
        "nobody",
        0,
        0,
        0,
    )
    assert Customer.objects.filter(external_id="nobody").count() == 0


@pytest.mark.parametrize(
    ("params", "status", "code", "param"),
    [
        ({"feature": "seats_nope"}, 404, None, "feature"),
        ({"period": "previous"}, 400, "invalid_parameter", "period"),
        ({"custmer": "x"}, 400, "unknown_parameter", "custmer"),
    ],
)
def test_bad_requests_are_refused(api, tenant_a, usage_plan, params, status, code, param):
    response = _usage(api, tenant_a, **params)

    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param
    if code:
        assert error["code"] == code


def test_a_feature_that_is_not_metered_is_refused(api, tenant_a):
    api.post("/api/v1/features", {"key": "sso", "name": "SSO", "type": "boolean"}, key=tenant_a.key)

    response = _usage(api, tenant_a, feature="sso")

    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
        "feature_not_metered",
        "feature",
    )


def test_another_projects_feature_is_not_found(api, tenant_a, tenant_b, usage_plan):
    response = _usage(api, tenant_b)

    assert response.status_code == 404
    assert response.json()["error"]["param"] == "feature"
