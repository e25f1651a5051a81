"""A customer's account cap: one spend cap in money across their metered features (`/entitlements/spend_caps`
without a feature). What their metered prices in its currency bill together for the period may reach its amount;
past it, use past a feature's limit is refused (`block`, `binding: "account_cap"`) or goes on, announced once a
period (`alert`). Use within a feature's limit is never refused by it. Every use of a feature it sums is judged
under the cap's row lock, so concurrent uses of different features never pass it together."""

from typing import Any

import pytest
from django.test import Client

from billing.models import SubscriptionItem
from catalog.models import Feature, Price
from core.models import AuditLogEntry
from entitlements.models import SpendCap, UsageCounter, UsageEvent
from events.models import Event
from tests.catalog import price_create, product_create
from tests.entitlements.helpers import customer, feature, hand_subscription, product, subscribe
from tests.entitlements.test_consume import _concurrently

CONSUME = "/api/v1/entitlements/consume"
CAPS = "/api/v1/entitlements/spend_caps"


def consume(api, tenant, event_id, feature_key, quantity=1, customer="u1"):
    body = {"id": event_id, "customer": customer, "feature": feature_key, "quantity": quantity}
    response = api.post(CONSUME, body, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def check(api, tenant, feature_key, quantity=1, customer="u1"):
    url = f"/api/v1/entitlements/check?customer={customer}&feature={feature_key}&quantity={quantity}"
    response = api.get(url, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def account_cap(api, tenant, cap, customer="u1", **fields):
    response = api.post(CAPS, {"customer": customer, "cap": cap, **fields}, key=tenant.key)
    assert response.status_code in (200, 201), response.json()
    return response.json()


def _reached():
    return [
        (e.data["object"]["scope"], e.data["object"]["feature"], e.data["object"]["amount_billed"])
        for e in Event.objects.filter(type="usage.cap_reached").order_by("sequence")
    ]


def _metered_price(project, key, meter, free, unit_amount):
    """A graduated metered price billing `meter`: the first `free` units at 0, then `unit_amount` each."""
    tiers = [{"up_to": free, "unit_amount": 0}, {"up_to": "inf", "unit_amount": unit_amount}]
    return price_create(
        product_create(project, f"usage-{key}", f"Usage {key}"),
        key,
        None,
        interval="month",
        usage_type="metered",
        meter=meter,
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=tiers,
    )


def billed_plan(project, external_id="u1"):
    """`api_calls` (100 a month, then 2 cents each) and `tokens` (1,000, then 1 cent each), both with overage,
    and `exports` (10 a month, no overage, billed 5 cents from the first), each sold by a metered price
    `external_id`'s subscription carries."""
    calls = feature(project, "api_calls", Feature.Type.METERED)
    tokens = feature(project, "tokens", Feature.Type.METERED)
    exports = feature(project, "exports", Feature.Type.METERED)
    prices = [
        _metered_price(project, "calls", "api_calls", 100, 2),
        _metered_price(project, "tokens", "tokens", 1000, 1),
        price_create(
            product_create(project, "usage-exports", "Usage exports"),
            "exports",
            5,
            interval="month",
            usage_type="metered",
            meter="exports",
        ),
    ]
    values = {
        calls: {"limit": 100, "overage": "allowed"},
        tokens: {"limit": 1000, "overage": "allowed"},
        exports: 10,
    }
    subscription = subscribe(customer(project, external_id), product(project, f"pro-{external_id}", values))
    sold = [(subscription.price, 1)] + [(price, None) for price in prices]
    for item, (price, quantity) in enumerate(sold):
        SubscriptionItem.objects.create(
            project=project,
            subscription=subscription,
            price=price,
            product=price.product,
            quantity=quantity,
            usage_type=price.usage_type,
            stripe_item_id=f"si_for_{subscription.pk}_{item}",
        )
    hand_subscription(subscription)
    return subscription


@pytest.fixture
def billed(tenant_a, stripe_emulator):
    return billed_plan(tenant_a.project)


def test_an_account_cap_bounds_what_all_the_metered_prices_bill_together(api, tenant_a, billed):
    made = account_cap(api, tenant_a, {"amount": 50, "currency": "USD"}, reason="a trial account")
    assert (made["feature"], made["cap"]) == (None, {"amount": 50, "currency": "usd", "at_cap": "block"})
    assert consume(api, tenant_a, "c1", "api_calls", 110)["account_cap"] == {
        "at_cap": "block",
        "set_by": "customer",
        "amount": 50,
        "currency": "usd",
        "used_amount": 20,
        "left_amount": 30,
        "left_units": 15,
    }
    answer = consume(api, tenant_a, "t1", "tokens", 1025)
    assert (answer["account_cap"]["used_amount"], answer["account_cap"]["left_units"]) == (45, 5)
    assert check(api, tenant_a, "api_calls")["account_cap"]["left_units"] == 2

    # 3 more calls would bill 51: refused, nothing recorded; 2 fit.
    refused = consume(api, tenant_a, "c2", "api_calls", 3)
    assert (refused["allowed"], refused["binding"], refused["used"]) == (False, "account_cap", 110)
    assert refused["retry_after"] > 0
    assert UsageEvent.objects.filter(event_id="c2").count() == 0
    assert consume(api, tenant_a, "c3", "api_calls", 2)["allowed"] is True
    assert _reached() == []
    # The token that bills the 50th cent reaches the cap: announced once; the next is refused.
    assert consume(api, tenant_a, "t2", "tokens", 1)["account_cap"]["left_amount"] == 0
    assert _reached() == [("account", "tokens", 50)]
    refused = consume(api, tenant_a, "t3", "tokens", 1)
    assert (refused["allowed"], refused["binding"], refused["step"]) == (False, "account_cap", None)
    # Use within a feature's limit is never refused by it: exports bill 5 cents each from the first.
    assert consume(api, tenant_a, "e1", "exports", 3)["allowed"] is True
    assert check(api, tenant_a, "exports")["account_cap"]["used_amount"] == 65
    counters = dict(UsageCounter.objects.values_list("feature__key", "used"))
    assert counters == {"api_calls": 112, "tokens": 1026, "exports": 3}
    assert _reached() == [("account", "tokens", 50)]


def test_the_tighter_of_a_features_cap_and_the_account_cap_binds(api, tenant_a, billed):
    account_cap(api, tenant_a, {"amount": 100, "currency": "usd"})
    feature_cap = {"customer": "u1", "feature": "api_calls", "cap": {"units": 5}}
    assert api.post(CAPS, feature_cap, key=tenant_a.key).status_code == 201
    refused = consume(api, tenant_a, "c1", "api_calls", 106)
    assert (refused["allowed"], refused["binding"]) == (False, "cap")
    assert consume(api, tenant_a, "t1", "tokens", 1095)["allowed"] is True
    refused = consume(api, tenant_a, "c2", "api_calls", 104)
    assert (refused["allowed"], refused["binding"]) == (False, "account_cap")
    assert refused["account_cap"] == {
        "at_cap": "block",
        "set_by": "customer",
        "amount": 100,
        "currency": "usd",
        "used_amount": 95,
        "left_amount": 5,
        "left_units": 102,
    }


def test_an_alert_account_cap_lets_use_go_on_and_announces_it_once(api, tenant_a, billed):
    account_cap(api, tenant_a, {"amount": 30, "currency": "usd", "at_cap": "alert"})
    assert consume(api, tenant_a, "c1", "api_calls", 110)["allowed"] is True
    assert consume(api, tenant_a, "t1", "tokens", 1015)["allowed"] is True
    assert _reached() == [("account", "tokens", 35)]
    answer = consume(api, tenant_a, "c2", "api_calls", 50)
    assert (answer["allowed"], answer["binding"], answer["account_cap"]["used_amount"]) == (True, None, 135)
    assert answer["account_cap"]["left_amount"] == 0
    assert _reached() == [("account", "tokens", 35)]
    event = Event.objects.get(type="usage.cap_reached").data["object"]
    assert {k: event[k] for k in ("customer", "at_cap", "amount", "currency", "units", "cap_limit")} == {
        "customer": "u1",
        "at_cap": "alert",
        "amount": 30,
        "currency": "usd",
        "units": None,
        "cap_limit": None,
    }


def test_holds_and_recorded_usage_are_judged_under_the_account_cap(api, tenant_a, billed):
    account_cap(api, tenant_a, {"amount": 20, "currency": "usd"})
    consume(api, tenant_a, "c1", "api_calls", 105)
    body = {"id": "job", "customer": "u1", "feature": "tokens", "quantity": 1011}
    refused = api.post("/api/v1/entitlements/holds", body, key=tenant_a.key).json()
    assert (refused["allowed"], refused["entitlement"]["binding"]) == (False, "account_cap")
    body["quantity"] = 1010
    placed = api.post("/api/v1/entitlements/holds", body, key=tenant_a.key).json()
    assert placed["allowed"] is True
    assert placed["entitlement"]["account_cap"]["used_amount"] == 20
    assert _reached() == [("account", "tokens", 20)]
    # Recorded usage is never refused; it counts, and the cap was announced already this period.
    events = [{"id": "r1", "customer": "u1", "feature": "api_calls", "quantity": 4}]
    assert api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key).status_code == 200
    assert check(api, tenant_a, "api_calls")["account_cap"]["used_amount"] == 28
    assert len(_reached()) == 1


def test_recorded_usage_that_reaches_the_account_cap_announces_it_once(api, tenant_a, billed):
    account_cap(api, tenant_a, {"amount": 10, "currency": "usd", "at_cap": "alert"})
    events = [
        {"id": "r1", "customer": "u1", "feature": "api_calls", "quantity": 103},
        {"id": "r2", "customer": "u1", "feature": "tokens", "quantity": 1005},
    ]
    assert api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key).status_code == 200
    assert _reached() == [("account", "tokens", 11)]
    again = [{"id": "r3", "customer": "u1", "feature": "tokens", "quantity": 5}]
    assert api.post("/api/v1/usage/batch", {"events": again}, key=tenant_a.key).status_code == 200
    assert len(_reached()) == 1


def test_the_account_cap_is_set_replaced_listed_and_removed_audited(api, tenant_a, billed):
    consume(api, tenant_a, "c1", "api_calls", 110)
    made = api.post(CAPS, {"customer": "u1", "cap": {"amount": 40, "currency": "usd"}}, key=tenant_a.key)
    assert made.status_code == 201, made.json()
    cap_id = made.json()["id"]
    replaced = account_cap(api, tenant_a, {"amount": 60, "currency": "usd", "at_cap": "alert"}, feature=None)
    assert (replaced["id"], replaced["cap"]["at_cap"]) == (cap_id, "alert")
    listed = api.get(f"{CAPS}?customer=u1", key=tenant_a.key).json()["data"]
    assert [(row["id"], row["feature"]) for row in listed] == [(cap_id, None)]

    below = api.post(CAPS, {"customer": "u1", "cap": {"amount": 19, "currency": "usd"}}, key=tenant_a.key)
    assert below.status_code == 400
    assert below.json()["error"] == {
        **below.json()["error"],
        "code": "cap_below_usage",
        "param": "cap",
        "message": "cap: the period's use already bills 20 usd; the cap allows 19.",
    }
    assert SpendCap.objects.get().cap == {"amount": 60, "currency": "usd", "at_cap": "alert"}

    deleted = api.delete(f"{CAPS}/{cap_id}", {"reason": "trial over"}, key=tenant_a.key)
    assert (deleted.status_code, deleted.json()["deleted"], deleted.json()["feature"]) == (200, True, None)
    assert check(api, tenant_a, "api_calls")["account_cap"] is None
    actions = list(
        AuditLogEntry.objects.filter(action__startswith="spend_cap.")
        .order_by("created_at")
        .values_list("action", "reason")
    )
    assert actions == [("spend_cap.set", ""), ("spend_cap.set", ""), ("spend_cap.deleted", "trial over")]


@pytest.mark.parametrize(
    ("cap", "message"),
    [
        (
            {"units": 5, "currency": "usd"},
            "cap: an account cap is in money only (units of different features",
        ),
        ({"amount": 5}, 'cap: an account cap is {"amount": m, "currency": "usd"}'),
        ({"amount": 5, "currency": "us"}, "cap.currency: This value does not match the required pattern."),
        ({"amount": 5, "currency": "usd", "at_cap": "warn"}, 'cap.at_cap: "warn" is not a valid choice.'),
    ],
    ids=["units", "no-currency", "bad-currency", "unknown-at-cap"],
)
def test_a_malformed_account_cap_is_refused_and_nothing_stored(api, tenant_a, billed, cap, message):
    refused = api.post(CAPS, {"customer": "u1", "cap": cap}, key=tenant_a.key)
    assert refused.status_code == 400, refused.json()
    assert refused.json()["error"]["message"].startswith(message)
    assert SpendCap.objects.count() == 0
    assert AuditLogEntry.objects.filter(action__startswith="spend_cap.").count() == 0


def test_a_currency_on_a_features_cap_is_refused(api, tenant_a, billed):
    body = {"customer": "u1", "feature": "api_calls", "cap": {"amount": 5, "currency": "usd"}}
    refused = api.post(CAPS, body, key=tenant_a.key)
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "cap")
    assert SpendCap.objects.count() == 0


def test_another_projects_key_cannot_see_or_remove_an_account_cap(api, tenant_a, tenant_b, billed):
    cap_id = account_cap(api, tenant_a, {"amount": 50, "currency": "usd"})["id"]
    assert api.delete(f"{CAPS}/{cap_id}", key=tenant_b.key).status_code == 404
    assert api.get(f"{CAPS}?customer=u1", key=tenant_b.key).json()["data"] == []
    # Another project's customer of the same id gets their own cap, which judges nothing of u1's.
    other = account_cap(api, tenant_b, {"amount": 0, "currency": "usd"})
    assert other["id"] != cap_id
    assert consume(api, tenant_a, "c1", "api_calls", 120)["account_cap"]["amount"] == 50
    assert SpendCap.objects.get(pk=cap_id).cap["amount"] == 50


def test_only_prices_in_the_caps_currency_are_summed(api, tenant_a, billed):
    account_cap(api, tenant_a, {"amount": 10, "currency": "eur"})
    answer = consume(api, tenant_a, "c1", "api_calls", 150)
    assert answer["allowed"] is True
    assert answer["account_cap"] == {
        "at_cap": "block",
        "set_by": "customer",
        "amount": 10,
        "currency": "eur",
        "used_amount": 0,
        "left_amount": 10,
        "left_units": None,
    }
    assert Price.objects.filter(currency="eur").count() == 0


def race_two_features(api, tenant) -> list[dict[str, Any]]:
    """`u1` at the limit of `api_calls` (100) and `tokens` (1,000), then 40 consumes of one unit at once, half of
    each (2 cents and 1 cent past the limit): each answer, with the feature it used."""
    consume(api, tenant, "c0", "api_calls", 100)
    consume(api, tenant, "t0", "tokens", 1000)

    def use(index: int, client: Client) -> dict[str, Any]:
        key = "api_calls" if index % 2 else "tokens"
        body = {"id": f"u{index}", "customer": "u1", "feature": key, "quantity": 1}
        response = client.post(
            CONSUME,
            body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {tenant.key}"},
        )
        assert response.status_code == 200, response.json()
        return {"feature": key, **response.json()}

    return _concurrently(40, use)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_uses_of_two_features_never_pass_the_account_cap_together(api, tenant_a, billed):
    """40 uses at once, half calls (2 cents past the limit), half tokens (1 cent), each past its limit already:
    the cap of 30 cents admits uses while they fit, whatever their order, never one more, and is announced once."""
    account_cap(api, tenant_a, {"amount": 30, "currency": "usd"})
    results = race_two_features(api, tenant_a)
    counters = dict(UsageCounter.objects.values_list("feature__key", "used"))
    billed_total = 2 * (counters["api_calls"] - 100) + (counters["tokens"] - 1000)
    allowed = [r["feature"] for r in results if r["allowed"]]
    assert billed_total == 2 * allowed.count("api_calls") + allowed.count("tokens")
    # Any refused token was refused at 30 cents; with every token allowed (20 cents), calls bring it to 30.
    assert billed_total == 30
    refused = [r for r in results if not r["allowed"]]
    assert len(refused) == 40 - len(allowed)
    assert {r["binding"] for r in refused} == {"account_cap"}
    assert UsageEvent.objects.filter(kind="consume").count() == 2 + len(allowed)
    assert [(scope, billed) for scope, _, billed in _reached()] == [("account", 30)]


def test_explain_names_the_cap_that_refuses_and_what_each_cap_has_used(api, tenant_a, billed):
    from entitlements.explain import entitlements_explain

    account_cap(api, tenant_a, {"amount": 30, "currency": "usd"})
    body = {"customer": "u1", "feature": "api_calls", "cap": {"units": 40, "at_cap": "alert"}}
    assert api.post(CAPS, body, key=tenant_a.key).status_code == 201
    consume(api, tenant_a, "c1", "api_calls", 110)
    consume(api, tenant_a, "t1", "tokens", 1000)
    holder = SpendCap.objects.get(feature=None).customer
    explained = entitlements_explain(project=tenant_a.project, customer=holder)
    tokens = next(f for f in explained.features if f.key == "tokens")
    assert tokens.verdict == (
        "Allowed: 1000 of 1000 used this period; use may go past the limit (overage, billed by its metered price). "
        "Account cap (the customer's, blocks at it): $0.20 of $0.30 billed across the customer's metered features this period."
    )
    consume(api, tenant_a, "c2", "api_calls", 5)
    explained = entitlements_explain(project=tenant_a.project, customer=holder)
    calls = next(f for f in explained.features if f.key == "api_calls")
    wait = calls.answer["retry_after"]
    assert calls.verdict == (
        f"Not allowed: the account cap is reached (115 used; it frees up in {wait} s, when the period ends). "
        "Spend cap (the customer's, alerts at it): 15 of 40 units past the limit used. "
        "Account cap (the customer's, blocks at it): $0.30 of $0.30 billed across the customer's metered features this period."
    )


def test_as_of_now_answers_what_the_live_check_does(api, tenant_a, billed):
    from django.utils import timezone

    account_cap(api, tenant_a, {"amount": 40, "currency": "usd"})
    consume(api, tenant_a, "c1", "api_calls", 110)
    body = {"id": "job", "customer": "u1", "feature": "tokens", "quantity": 1015}
    assert api.post("/api/v1/entitlements/holds", body, key=tenant_a.key).json()["allowed"] is True
    live = {key: check(api, tenant_a, key, 3) for key in ("api_calls", "tokens")}
    calls, tokens = live["api_calls"], live["tokens"]
    assert (calls["binding"], calls["account_cap"]["used_amount"], calls["account_cap"]["left_units"]) == (
        "account_cap",
        35,
        2,
    )
    assert (tokens["allowed"], tokens["held"], tokens["account_cap"]["left_units"]) == (True, 1015, 5)
    at = timezone.now().isoformat().replace("+00:00", "Z")
    for key, answer in live.items():
        url = f"/api/v1/entitlements/check?customer=u1&feature={key}&quantity=3&as_of={at}"
        response = api.get(url, key=tenant_a.key)
        assert response.status_code == 200, response.json()
        assert response.json() == answer


def test_without_overage_anywhere_the_limits_bound_every_bill_and_the_cap_judges_nothing(api, tenant_a):
    p = tenant_a.project
    exports = feature(p, "exports", Feature.Type.METERED)
    subscribe(customer(p, "u2"), product(p, "basic", {exports: 10}))
    account_cap(api, tenant_a, {"amount": 0, "currency": "usd"}, customer="u2")
    answer = consume(api, tenant_a, "e1", "exports", 10, customer="u2")
    assert (answer["allowed"], answer["account_cap"], answer["used"]) == (True, None, 10)
    refused = consume(api, tenant_a, "e2", "exports", 1, customer="u2")
    assert (refused["allowed"], refused["binding"]) == (False, "period")
    assert _reached() == []


def test_a_batch_names_the_feature_whose_use_reached_the_account_cap(api, tenant_a, billed):
    """106 calls alone take the sum from 0 to 12 cents (cap 10): calls reached it, not the 3 tokens after them in
    the batch, which bill nothing."""
    account_cap(api, tenant_a, {"amount": 10, "currency": "usd", "at_cap": "alert"})
    events = [
        {"id": "r1", "customer": "u1", "feature": "api_calls", "quantity": 106},
        {"id": "r2", "customer": "u1", "feature": "tokens", "quantity": 3},
    ]
    assert api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key).status_code == 200
    event = Event.objects.get(type="usage.cap_reached").data["object"]
    assert (event["scope"], event["feature"], event["used"], event["amount_billed"]) == (
        "account",
        "api_calls",
        106,
        12,
    )
