"""Spend caps: a metered value whose use may go past its limit (`"overage": "allowed"`) may bound that use, in units
past the limit or in what the feature's metered price bills for the period (`"cap": {"units": n} | {"amount":
m}`), and either refuse use there (`"at_cap": "block"`) or let it go on and announce it (`"alert"`). A customer's
own cap (`/entitlements/spend_caps`, audited) replaces the plan's. Answers say how much of the cap is used and
left, in units and in money."""

import pytest

from billing.models import SubscriptionItem
from catalog.models import Feature, Price
from core.models import AuditLogEntry
from entitlements.models import SpendCap, UsageCounter, UsageEvent
from events.models import Event
from tests.catalog import price_create, product_create
from tests.entitlements.helpers import customer, feature, hand_subscription, product, subscribe

CONSUME = "/api/v1/entitlements/consume"
CAPS = "/api/v1/entitlements/spend_caps"


def consume(api, tenant, event_id, quantity=1, customer="u1"):
    body = {"id": event_id, "customer": customer, "feature": "api_calls", "quantity": quantity}
    response = api.post(CONSUME, body, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def check(api, tenant, quantity=1, customer="u1"):
    url = f"/api/v1/entitlements/check?customer={customer}&feature=api_calls&quantity={quantity}"
    response = api.get(url, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def _reached():
    return [
        (e.data["object"]["at_cap"], e.data["object"]["used"])
        for e in Event.objects.filter(type="usage.cap_reached").order_by("sequence")
    ]


@pytest.fixture
def capped(tenant_a):
    p = tenant_a.project
    calls = feature(p, "api_calls", Feature.Type.METERED)
    value = {"limit": 100, "overage": "allowed", "cap": {"units": 20}}
    subscription = subscribe(customer(p, "u1"), product(p, "pro", {calls: value}))
    return subscription


def test_a_units_cap_refuses_use_past_it_and_says_how_much_is_left(api, tenant_a, capped):
    assert consume(api, tenant_a, "c1", 110)["cap"] == {
        "at_cap": "block",
        "set_by": "catalog",
        "units": 20,
        "amount": None,
        "currency": None,
        "used_units": 10,
        "used_amount": 0,
        "left_units": 10,
        "left_amount": None,
    }
    assert consume(api, tenant_a, "c2", 10)["allowed"] is True
    refused = consume(api, tenant_a, "c3")
    assert (refused["allowed"], refused["binding"], refused["used"]) == (False, "cap", 120)
    assert refused["cap"]["left_units"] == 0
    period_left = (capped.current_period_end - capped.current_period_start).total_seconds()
    assert 0 < refused["retry_after"] <= period_left
    asked = check(api, tenant_a)
    assert (asked["allowed"], asked["binding"], asked["remaining"]) == (False, "cap", -20)
    # Nothing of the refused use was recorded; the cap was announced once, by the use that reached it.
    assert UsageCounter.objects.get().used == 120
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == ["c1", "c2"]
    assert _reached() == [("block", 120)]
    consume(api, tenant_a, "c4")
    assert _reached() == [("block", 120)]


def test_a_hold_is_refused_past_the_cap_as_a_consume_is(api, tenant_a, capped):
    consume(api, tenant_a, "c1", 115)
    body = {"id": "job", "customer": "u1", "feature": "api_calls", "quantity": 6}
    refused = api.post("/api/v1/entitlements/holds", body, key=tenant_a.key).json()
    assert (refused["allowed"], refused["entitlement"]["binding"]) == (False, "cap")
    body["quantity"] = 5
    assert api.post("/api/v1/entitlements/holds", body, key=tenant_a.key).json()["allowed"] is True
    assert check(api, tenant_a)["cap"]["left_units"] == 0


def test_an_alert_cap_lets_use_go_on_and_announces_it_once(api, tenant_a):
    p = tenant_a.project
    calls = feature(p, "api_calls", Feature.Type.METERED)
    value = {"limit": 100, "overage": "allowed", "cap": {"units": 20, "at_cap": "alert"}}
    subscribe(customer(p, "u1"), product(p, "pro", {calls: value}))
    for n, quantity in enumerate((119, 1, 30)):
        assert consume(api, tenant_a, f"c{n}", quantity)["allowed"] is True
    answer = check(api, tenant_a)
    assert (answer["allowed"], answer["binding"], answer["cap"]["used_units"]) == (True, None, 50)
    assert answer["cap"]["left_units"] == 0
    assert _reached() == [("alert", 120)]


@pytest.fixture
def billed_calls(tenant_a, stripe_emulator):
    """`api_calls` sold with a graduated metered price (the first 100 free, then 2 cents each) on `pro`, whose
    value is 100 with overage and a cap of 50 cents; u1 subscribes to both."""
    p = tenant_a.project
    calls = feature(p, "api_calls", Feature.Type.METERED)
    usage = product_create(p, "usage", "Usage")
    tiers = [{"up_to": 100, "unit_amount": 0}, {"up_to": "inf", "unit_amount": 2}]
    price_create(
        usage,
        "calls",
        None,
        interval="month",
        usage_type="metered",
        meter="api_calls",
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=tiers,
    )
    pro = product(p, "pro", {calls: {"limit": 100, "overage": "allowed", "cap": {"amount": 50}}})
    subscription = subscribe(customer(p, "u1"), pro)
    price = Price.objects.get(project=p, key="calls")
    for item, (sold, quantity) in enumerate(((subscription.price, 1), (price, None))):
        SubscriptionItem.objects.create(
            project=p,
            subscription=subscription,
            price=sold,
            product=sold.product,
            quantity=quantity,
            usage_type=sold.usage_type,
            stripe_item_id=f"si_for_{subscription.pk}_{item}",
        )
    hand_subscription(subscription)
    return calls


def test_a_money_cap_bounds_what_the_metered_price_bills(api, tenant_a, billed_calls):
    answer = consume(api, tenant_a, "c1", 120)
    assert answer["cap"] == {
        "at_cap": "block",
        "set_by": "catalog",
        "units": None,
        "amount": 50,
        "currency": "usd",
        "used_units": 20,
        "used_amount": 40,
        "left_units": 5,
        "left_amount": 10,
    }
    assert consume(api, tenant_a, "c2", 5)["cap"]["left_amount"] == 0
    refused = consume(api, tenant_a, "c3")
    assert (refused["allowed"], refused["binding"]) == (False, "cap")
    assert UsageCounter.objects.get().used == 125


def test_a_customers_own_cap_replaces_the_plans_and_is_audited(api, tenant_a, capped):
    consume(api, tenant_a, "c1", 110)
    body = {"customer": "u1", "feature": "api_calls", "cap": {"units": 50}, "reason": "raised on request"}
    created = api.post(CAPS, body, key=tenant_a.key)
    assert created.status_code == 201, created.json()
    cap_id = created.json()["id"]
    assert created.json()["cap"] == {"units": 50, "at_cap": "block"}
    answer = check(api, tenant_a)
    assert (answer["cap"]["set_by"], answer["cap"]["left_units"]) == ("customer", 40)
    body["cap"] = {"units": 30, "at_cap": "alert"}
    replaced = api.post(CAPS, body, key=tenant_a.key)
    assert (replaced.status_code, replaced.json()["id"]) == (200, cap_id)
    assert check(api, tenant_a)["cap"]["at_cap"] == "alert"
    listed = api.get(f"{CAPS}?customer=u1", key=tenant_a.key).json()
    assert [row["id"] for row in listed["data"]] == [cap_id]

    # Below what is used already: refused, nothing changed.
    body["cap"] = {"units": 5}
    below = api.post(CAPS, body, key=tenant_a.key)
    assert below.status_code == 400
    assert below.json()["error"]["code"] == "cap_below_usage"
    assert below.json()["error"]["message"] == (
        "cap: 10 units past the limit are used this period; the cap allows 5."
    )
    assert SpendCap.objects.get().cap == {"units": 30, "at_cap": "alert"}

    deleted = api.delete(f"{CAPS}/{cap_id}", key=tenant_a.key)
    assert (deleted.status_code, deleted.json()["deleted"]) == (200, True)
    assert check(api, tenant_a)["cap"]["set_by"] == "catalog"
    actions = sorted(
        AuditLogEntry.objects.filter(action__startswith="spend_cap.").values_list("action", "reason")
    )
    assert actions == [
        ("spend_cap.deleted", ""),
        ("spend_cap.set", "raised on request"),
        ("spend_cap.set", "raised on request"),
    ]


def test_another_projects_key_cannot_see_or_remove_a_cap(api, tenant_a, tenant_b, capped):
    body = {"customer": "u1", "feature": "api_calls", "cap": {"units": 50}}
    cap_id = api.post(CAPS, body, key=tenant_a.key).json()["id"]
    assert api.delete(f"{CAPS}/{cap_id}", key=tenant_b.key).status_code == 404
    assert api.get(f"{CAPS}?customer=u1", key=tenant_b.key).json()["data"] == []
    assert SpendCap.objects.count() == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"limit": 100, "cap": {"units": 5}}, 'a spend cap bounds overage: it needs "overage": "allowed".'),
        (
            {"limit": 100, "overage": "allowed", "cap": {"units": 5, "amount": 3}},
            'cap: a spend cap is {"units": n} or {"amount": m}, with "at_cap": "block" (the default) or "alert".',
        ),
        ({"limit": 100, "overage": "allowed", "cap": {"units": -1}}, "cap: units is an integer ≥ 0."),
        (
            {"limit": 100, "overage": "allowed", "cap": {"units": 1, "at_cap": "warn"}},
            'cap: at_cap is "block" or "alert".',
        ),
    ],
    ids=["no-overage", "both", "negative", "unknown-at-cap"],
)
def test_a_malformed_cap_in_the_catalog_is_refused(api, tenant_a, catalog, value, message):
    api.post(
        "/api/v1/features", {"key": "api_calls", "name": "API calls", "type": "metered"}, key=tenant_a.key
    )
    answer = api.patch("/api/v1/products/pro", {"features": {"api_calls": value}}, key=tenant_a.key)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_feature_value"
    prefix = "features.api_calls: " if message.startswith("a spend") else "features.api_calls."
    assert answer.json()["error"]["message"] == prefix + message


def test_a_cap_is_shown_in_the_catalog(api, tenant_a, catalog):
    api.post(
        "/api/v1/features", {"key": "api_calls", "name": "API calls", "type": "metered"}, key=tenant_a.key
    )
    value = {"limit": 100, "overage": "allowed", "cap": {"amount": 5000, "at_cap": "alert"}}
    answer = api.patch("/api/v1/products/pro", {"features": {"api_calls": value}}, key=tenant_a.key)
    assert answer.status_code == 200, answer.json()
    assert answer.json()["features"]["api_calls"] == value


@pytest.mark.parametrize(
    ("body", "param"),
    [({"reason": "r" * 501}, "reason"), ({"reason": "ok", "why": "extra"}, "why")],
    ids=["reason-too-long", "unknown-field"],
)
def test_removing_a_cap_with_a_malformed_body_is_refused_and_the_cap_stays(
    api, tenant_a, capped, body, param
):
    made = api.post(CAPS, {"customer": "u1", "feature": "api_calls", "cap": {"units": 50}}, key=tenant_a.key)
    cap_id = made.json()["id"]
    audited = AuditLogEntry.objects.count()
    refused = api.delete(f"{CAPS}/{cap_id}", body, key=tenant_a.key)
    assert refused.status_code == 400, refused.json()
    assert refused.json()["error"]["param"] == param
    assert SpendCap.objects.filter(pk=cap_id).exists()
    assert AuditLogEntry.objects.count() == audited
    assert check(api, tenant_a)["cap"]["set_by"] == "customer"


def test_a_cap_is_judged_on_the_use_credits_did_not_pay(api, tenant_a):
    """10 allowed, then credits: 14 used, 4 of them paid with credits, none past the limit billed. A cap of 0 units
    past the limit is not below that use; the next unit past what credits pay is refused by it."""
    from tests.entitlements.test_credits_waterfall import grant

    p = tenant_a.project
    summaries = feature(p, "summaries", Feature.Type.METERED)
    feature(p, "ai_credits", Feature.Type.CREDITS)
    value = {"limit": 10, "overage": "allowed", "credits": {"feature": "ai_credits", "cost": 1}}
    subscribe(customer(p, "u1"), product(p, "pro", {summaries: value}))
    grant(api, tenant_a, 4)
    body = {"id": "c1", "customer": "u1", "feature": "summaries", "quantity": 14}
    took = api.post("/api/v1/entitlements/consume", body, key=tenant_a.key).json()
    assert (took["allowed"], took["credits"]["covered"], took["remaining"]) == (True, 4, 0)
    made = api.post(CAPS, {"customer": "u1", "feature": "summaries", "cap": {"units": 0}}, key=tenant_a.key)
    assert made.status_code == 201, made.json()
    more = api.post(
        "/api/v1/entitlements/consume", {**body, "id": "c2", "quantity": 1}, key=tenant_a.key
    ).json()
    assert (more["allowed"], more["binding"]) == (False, "cap")
