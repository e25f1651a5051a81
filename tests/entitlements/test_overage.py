"""Soft limits: a metered feature's value may let use go past its limit (`{"limit": n, "overage": "allowed"}`).
Checks, consumes and holds then allow any use, `remaining` goes below 0 and says by how much, the usage
thresholds still fire once each; the feature's metered price bills the use past the limit (a graduated price
whose first tier is free); a blocked limit, a revocation and other feature types are unchanged."""

import pytest

from catalog.models import Feature, Price, ProductFeature
from core.models import AuditLogEntry
from entitlements.explain import entitlements_explain
from entitlements.models import Hold, UsageCounter, UsageEvent
from events.models import Event
from tests.billing.test_meter_reports import _renewal_usage_lines, _with_card
from tests.catalog import price_create, product_create
from tests.entitlements.helpers import customer, feature, product, subscribe

CONSUME = "/api/v1/entitlements/consume"


@pytest.fixture
def plans(tenant_a):
    p = tenant_a.project
    calls = feature(p, "api_calls", Feature.Type.METERED)
    exports = feature(p, "exports", Feature.Type.METERED)
    subscribe(
        customer(p, "u1"),
        product(p, "pro", {calls: {"limit": 100, "overage": "allowed"}, exports: 5}),
    )
    return {"calls": calls, "exports": exports}


def consume(api, tenant, event_id, quantity, feature="api_calls", customer="u1"):
    body = {"id": event_id, "customer": customer, "feature": feature, "quantity": quantity}
    response = api.post(CONSUME, body, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def check(api, tenant, quantity=1, feature="api_calls"):
    url = f"/api/v1/entitlements/check?customer=u1&feature={feature}&quantity={quantity}"
    return api.get(url, key=tenant.key).json()


def _threshold_events():
    return [
        (e.data["object"]["threshold"], e.data["object"]["used"])
        for e in Event.objects.filter(type="usage.threshold_reached").order_by("sequence")
    ]


def test_use_goes_past_an_overage_limit_and_remaining_says_by_how_much(api, tenant_a, plans):
    assert consume(api, tenant_a, "c1", 100) == {
        "allowed": True,
        "feature": "api_calls",
        "type": "metered",
        "enabled": True,
        "value": 100,
        "limit": 100,
        "used": 100,
        "remaining": 0,
        "balance": None,
        "held": 0,
        "overage": "allowed",
        "cap": None,
        "account_cap": None,
        "credits": None,
        "step": "allowance",
        "windows": [],
        "binding": None,
        "retry_after": None,
    }
    past = consume(api, tenant_a, "c2", 30)
    assert (past["allowed"], past["used"], past["remaining"], past["overage"]) == (True, 130, -30, "allowed")
    answer = check(api, tenant_a, quantity=1_000)
    assert (answer["allowed"], answer["used"], answer["remaining"], answer["overage"]) == (
        True,
        130,
        -30,
        "allowed",
    )
    assert UsageCounter.objects.get(feature=plans["calls"]).used == 130
    assert sorted(UsageEvent.objects.values_list("event_id", "quantity")) == [("c1", 100), ("c2", 30)]
    # 80 % and 100 % are announced once each, by the use that crossed them; going further announces nothing.
    consume(api, tenant_a, "c3", 50)
    assert _threshold_events() == [(0.8, 100), (1.0, 100)]
    # A retry of a use past the limit is still counted once.
    again = consume(api, tenant_a, "c2", 30)
    assert (again["duplicate"], again["used"], again["remaining"]) == (True, 180, -80)
    assert UsageCounter.objects.get(feature=plans["calls"]).used == 180


def test_a_blocked_limit_beside_it_still_refuses_and_records_nothing(api, tenant_a, plans):
    assert consume(api, tenant_a, "e1", 5, feature="exports")["remaining"] == 0
    denied = consume(api, tenant_a, "e2", 1, feature="exports")
    assert (denied["allowed"], denied["used"], denied["remaining"], denied["overage"]) == (
        False,
        5,
        0,
        "blocked",
    )
    assert not UsageEvent.objects.filter(event_id="e2").exists()
    assert UsageCounter.objects.get(feature=plans["exports"]).used == 5


def test_a_revocation_ends_the_overage_too(api, tenant_a, plans):
    consume(api, tenant_a, "c1", 120)
    body = {"customer": "u1", "feature": "api_calls", "reason": "abuse"}
    assert api.post("/api/v1/entitlements/revocations", body, key=tenant_a.key).status_code == 201
    denied = consume(api, tenant_a, "c2", 1)
    assert (denied["allowed"], denied["enabled"], denied["limit"], denied["overage"]) == (
        False,
        False,
        0,
        "blocked",
    )
    assert not UsageEvent.objects.filter(event_id="c2").exists()
    assert UsageCounter.objects.get(feature=plans["calls"]).used == 120


def test_holds_may_take_units_past_an_overage_limit(api, tenant_a, plans):
    consume(api, tenant_a, "c1", 90)
    body = {"id": "h1", "customer": "u1", "feature": "api_calls", "quantity": 40}
    placed = api.post("/api/v1/entitlements/holds", body, key=tenant_a.key).json()
    assert placed["allowed"] is True
    entitlement = placed["entitlement"]
    assert (entitlement["used"], entitlement["held"], entitlement["remaining"]) == (90, 40, -30)
    confirmed = api.post("/api/v1/entitlements/holds/h1/confirm", {"quantity": 25}, key=tenant_a.key).json()
    assert (confirmed["entitlement"]["used"], confirmed["entitlement"]["remaining"]) == (115, -15)
    assert Hold.objects.get(hold_id="h1").status == "confirmed"


def test_a_zero_allowance_with_overage_is_pay_as_you_go(api, tenant_a):
    p = tenant_a.project
    calls = feature(p, "api_calls", Feature.Type.METERED)
    subscribe(customer(p, "u1"), product(p, "payg", {calls: {"limit": 0, "overage": "allowed"}}))
    answer = check(api, tenant_a)
    assert (answer["allowed"], answer["enabled"], answer["limit"], answer["remaining"]) == (True, True, 0, 0)
    used = consume(api, tenant_a, "c1", 7)
    assert (used["allowed"], used["used"], used["remaining"]) == (True, 7, -7)


def test_overage_follows_any_plan_that_allows_it_and_grants_add_to_the_limit(api, tenant_a, plans):
    """A second subscription with a larger, blocked limit does not take the overage away (the customer still
    holds a plan that bills use past the limit); a grant tops the limit up as usual."""
    p = tenant_a.project
    subscribe(customer(p, "u1"), product(p, "big", {plans["calls"]: 300}))
    grant = {"customer": "u1", "feature": "api_calls", "value": 50, "reason": "goodwill"}
    assert api.post("/api/v1/entitlements/grants", grant, key=tenant_a.key).status_code == 201
    answer = check(api, tenant_a, quantity=10_000)
    assert (answer["allowed"], answer["limit"], answer["overage"]) == (True, 350, "allowed")


def test_explain_says_use_went_past_the_limit(api, tenant_a, plans):
    consume(api, tenant_a, "c1", 130)
    explained = entitlements_explain(project=tenant_a.project, customer=customer(tenant_a.project, "u1"))
    calls = next(f for f in explained.features if f.key == "api_calls")
    assert calls.verdict == (
        "Allowed: 130 of 100 used this period; use may go past the limit, 30 past it (overage, billed by its "
        "metered price)."
    )


# --- the value in the catalog ---------------------------------------------------------------------------------


@pytest.fixture
def catalog_features(api, tenant_a):
    for key, kind in (("api_calls", "metered"), ("ai_credits", "credits"), ("seats", "allocation")):
        body = {"key": key, "name": key, "type": kind}
        assert api.post("/api/v1/features", body, key=tenant_a.key).status_code == 201


def test_the_products_api_stores_and_answers_overage_values(api, tenant_a, catalog_features):
    values = {"api_calls": {"limit": 1000, "overage": "allowed"}, "seats": {"per_unit": 1}}
    created = api.post(
        "/api/v1/products", {"key": "pro", "name": "Pro", "features": values}, key=tenant_a.key
    )
    assert created.status_code == 201, created.json()
    assert created.json()["features"] == values
    row = ProductFeature.objects.get(feature__key="api_calls")
    assert (row.value, row.per_unit, row.overage) == (1000, False, True)
    # Per unit with overage; and "blocked" said explicitly is the plain limit.
    changed = api.patch(
        f"/api/v1/products/{created.json()['id']}",
        {
            "features": {
                "api_calls": {"per_unit": 100, "overage": "allowed"},
                "seats": {"limit": 3, "overage": "blocked"},
            }
        },
        key=tenant_a.key,
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["features"] == {"api_calls": {"per_unit": 100, "overage": "allowed"}, "seats": 3}
    assert sorted(ProductFeature.objects.values_list("feature__key", "value", "per_unit", "overage")) == [
        ("api_calls", 100, True, True),
        ("seats", 3, False, False),
    ]


@pytest.mark.parametrize(
    ("feature_key", "value", "message"),
    [
        (
            "ai_credits",
            {"limit": 10, "overage": "allowed"},
            "only a metered feature's limit may allow overage.",
        ),
        ("seats", {"per_unit": 2, "overage": "allowed"}, "only a metered feature's limit may allow overage."),
        ("api_calls", {"limit": None, "overage": "allowed"}, "an unlimited value has no overage."),
        ("api_calls", {"limit": 10, "overage": "sometimes"}, 'overage is "allowed" or "blocked".'),
        ("api_calls", {"limit": 10, "per_unit": 10}, None),
        ("api_calls", {"overage": "allowed"}, None),
        ("api_calls", {"per_unit": None, "overage": "allowed"}, "per_unit is an integer ≥ 0."),
        ("api_calls", {"limit": -1}, "limit is an integer ≥ 0 or null."),
        (
            "ai_credits",
            "lots",
            'a credits feature takes an integer ≥ 0, null (unlimited), {"per_unit": n} or {"limit": n, "rollover": m, "cadence": "month", "per_entity": {"feature": k, "on_remove": "return", "credits": e}}.',
        ),
    ],
)
def test_bad_overage_values_are_400_and_store_nothing(
    api, tenant_a, catalog_features, feature_key, value, message
):
    audited = AuditLogEntry.objects.count()
    response = api.post(
        "/api/v1/products", {"key": "pro", "name": "Pro", "features": {feature_key: value}}, key=tenant_a.key
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_feature_value", f"features.{feature_key}")
    if message is not None:
        assert error["message"] == f"features.{feature_key}: {message}"
    assert not ProductFeature.objects.exists()
    assert AuditLogEntry.objects.count() == audited


# --- billed by the metered price ------------------------------------------------------------------------------


def test_use_past_the_limit_is_billed_by_the_graduated_metered_price(
    api, tenant_a, stripe_emulator, stripe_sdk, stripe_webhooks
):
    """Pro gives 100 calls a month and allows overage; its price is a graduated metered price whose first 100
    units are free and the rest cost 5 ¢. 130 calls: every use is reported to the meter, and the renewal invoice
    bills exactly the 30 past the limit, 150 ¢."""
    p = tenant_a.project
    assert (
        api.post(
            "/api/v1/features", {"key": "api_calls", "name": "API calls", "type": "metered"}, key=tenant_a.key
        )
    ).status_code == 201
    pro = product_create(p, "pro", "Pro")
    overage = {"api_calls": {"limit": 100, "overage": "allowed"}}
    assert api.patch(f"/api/v1/products/{pro.pk}", {"features": overage}, key=tenant_a.key).status_code == 200
    price_create(
        pro,
        "calls",
        None,
        interval="month",
        usage_type="metered",
        meter="api_calls",
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=[{"up_to": 100, "unit_amount": 0}, {"up_to": "inf", "unit_amount": 5}],
    )
    sdk = stripe_sdk()
    stripe_customer = _with_card(api, tenant_a, sdk)
    calls = Price.objects.get(key="calls")
    created = sdk.v1.subscriptions.create(
        {"customer": stripe_customer, "items": [{"price": calls.stripe_price_id}]}
    )
    stripe_webhooks.deliver()

    assert consume(api, tenant_a, "c1", 100, customer="user-1")["remaining"] == 0
    past = consume(api, tenant_a, "c2", 30, customer="user-1")
    assert (past["allowed"], past["remaining"]) == (True, -30)

    assert dict(UsageEvent.objects.values_list("event_id", "meter_status")) == {
        "c1": "reported",
        "c2": "reported",
    }
    assert _renewal_usage_lines(stripe_emulator, sdk, created.id, stripe_webhooks) == [(130, 150)]
