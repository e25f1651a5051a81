"""The credits waterfall: a metered value naming a credits feature (`"credits": {"feature": k, "cost": n}`) takes
each use from the period's allowance, then from that feature's credits (n a unit, by priority and expiry), then as
overage within the spend cap where the plan allows it, then refuses. Answers say which step `quantity` more comes
from (`step`) and what the credits still pay for (`credits`)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Feature, ProductFeature
from entitlements.models import CreditLedgerEntry, CreditLot, Hold, UsageCounter, UsageEvent
from tests.entitlements.helpers import customer, feature, product, subscribe

CONSUME = "/api/v1/entitlements/consume"
HOLDS = "/api/v1/entitlements/holds"


def consume(api, tenant, event_id, quantity=1, customer="u1"):
    body = {"id": event_id, "customer": customer, "feature": "summaries", "quantity": quantity}
    response = api.post(CONSUME, body, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def check(api, tenant, quantity=1, customer="u1"):
    url = f"/api/v1/entitlements/check?customer={customer}&feature=summaries&quantity={quantity}"
    response = api.get(url, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def grant(api, tenant, credits, reason="promo", **extra):
    body = {"customer": "u1", "feature": "ai_credits", "value": credits, "reason": reason, **extra}
    response = api.post("/api/v1/entitlements/grants", body, key=tenant.key)
    assert response.status_code == 201, response.json()


def hold(api, tenant, hold_id, quantity, status=200):
    body = {"id": hold_id, "customer": "u1", "feature": "summaries", "quantity": quantity}
    response = api.post(HOLDS, body, key=tenant.key)
    assert response.status_code == status, response.json()
    return response.json()


def _counter():
    return UsageCounter.objects.values_list("used", "held", "covered").get()


def _balance():
    return sum(CreditLot.objects.values_list("remaining", flat=True))


def _paying(api, tenant):
    """The credits feature's (balance, held)."""
    answer = api.get("/api/v1/entitlements/check?customer=u1&feature=ai_credits", key=tenant.key).json()
    return answer["balance"], answer["held"]


def _plan(tenant, value):
    p = tenant.project
    summaries = feature(p, "summaries", Feature.Type.METERED)
    feature(p, "ai_credits", Feature.Type.CREDITS)
    return subscribe(customer(p, "u1"), product(p, "pro", {summaries: value}))


@pytest.fixture
def waterfall(tenant_a):
    return _plan(tenant_a, {"limit": 10, "credits": {"feature": "ai_credits", "cost": 2}})


def test_use_takes_the_allowance_then_credits_then_is_refused(api, tenant_a, waterfall):
    grant(api, tenant_a, 9)  # pays for 4 units at 2 credits each
    first = consume(api, tenant_a, "c1", 8)
    assert (first["allowed"], first["used"], first["remaining"], first["step"]) == (True, 8, 2, "allowance")
    assert first["credits"] == {"feature": "ai_credits", "cost": 2, "balance": 9, "units": 4, "covered": 0}
    asked = check(api, tenant_a, 5)  # 2 from the allowance, 3 from credits
    assert (asked["allowed"], asked["step"], asked["binding"]) == (True, "credits", None)
    second = consume(api, tenant_a, "c2", 5)
    assert (second["allowed"], second["used"], second["remaining"]) == (True, 13, 0)
    assert second["credits"] == {"feature": "ai_credits", "cost": 2, "balance": 3, "units": 1, "covered": 3}
    assert _counter() == (13, 0, 3)
    assert _balance() == 3
    # The ledger names the consume that spent them, on the credits feature.
    spent = CreditLedgerEntry.objects.get(type=CreditLedgerEntry.Type.CONSUME)
    assert (spent.amount, spent.reference, spent.feature.key) == (-6, "c2", "ai_credits")
    assert list(UsageEvent.objects.values_list("event_id", "quantity", "covered").order_by("event_id")) == [
        ("c1", 8, 0),
        ("c2", 5, 3),
    ]
    # Two more units: the balance pays for one; no overage, so both are refused and nothing is taken.
    refused = consume(api, tenant_a, "c3", 2)
    assert (refused["allowed"], refused["binding"], refused["step"]) == (False, "period", None)
    assert refused["retry_after"] > 0
    assert _counter() == (13, 0, 3)
    assert _balance() == 3
    assert not UsageEvent.objects.filter(event_id="c3").exists()
    last = consume(api, tenant_a, "c4", 1)
    assert (last["allowed"], last["credits"]["balance"], last["credits"]["units"]) == (True, 1, 0)
    assert check(api, tenant_a)["allowed"] is False


def test_the_same_consume_again_spends_nothing_more(api, tenant_a, waterfall):
    grant(api, tenant_a, 20)
    consume(api, tenant_a, "c1", 12)
    again = consume(api, tenant_a, "c1", 12)
    assert (again["duplicate"], again["used"], again["credits"]["balance"]) == (True, 12, 16)
    assert _counter() == (12, 0, 2)
    assert CreditLedgerEntry.objects.filter(type=CreditLedgerEntry.Type.CONSUME).count() == 1


def test_credits_go_before_overage_which_the_cap_bounds(api, tenant_a):
    value = {
        "limit": 10,
        "overage": "allowed",
        "cap": {"units": 5},
        "credits": {"feature": "ai_credits", "cost": 1},
    }
    _plan(tenant_a, value)
    grant(api, tenant_a, 4)
    assert check(api, tenant_a, 12)["step"] == "credits"
    assert check(api, tenant_a, 15)["step"] == "overage"
    # 10 allowance + 4 credits + 5 overage: the cap counts only what overage took.
    assert check(api, tenant_a, 19)["allowed"] is True
    refused = check(api, tenant_a, 20)
    assert (refused["allowed"], refused["binding"]) == (False, "cap")
    took = consume(api, tenant_a, "c1", 16)
    assert (took["used"], took["remaining"], took["credits"]["covered"]) == (16, -2, 4)
    assert took["cap"]["used_units"] == 2
    assert took["cap"]["left_units"] == 3
    assert _counter() == (16, 0, 4)
    assert consume(api, tenant_a, "c2", 4)["allowed"] is False
    assert consume(api, tenant_a, "c3", 3)["allowed"] is True
    assert _counter() == (19, 0, 4)
    assert _balance() == 0


def test_a_hold_holds_credits_and_gives_back_the_credits_it_does_not_use(api, tenant_a, waterfall):
    grant(api, tenant_a, 10)
    consume(api, tenant_a, "c1", 9)
    held = hold(api, tenant_a, "h1", 4)  # 1 from the allowance, 3 from credits (6 credits)
    assert held["entitlement"]["credits"]["balance"] == 4
    assert _counter() == (13, 4, 3)
    assert Hold.objects.values_list("covered", "credit_cost", "paid_with__key").get() == (3, 2, "ai_credits")
    # The credits feature's answer counts them as held, out of its balance.
    assert _paying(api, tenant_a) == (4, 6)
    report = {"events": [{"id": "r1", "quantity": 2}]}  # the allowance's unit and one paid unit used
    assert api.post(f"{HOLDS}/h1/usage", report, key=tenant_a.key).status_code == 200
    assert _paying(api, tenant_a) == (4, 4)
    # Confirming 2 keeps the allowance's unit and one paid unit: 2 of the 3 paid units go back, 4 credits.
    response = api.post(f"{HOLDS}/h1/confirm", {"quantity": 2}, key=tenant_a.key)
    assert response.status_code == 200, response.json()
    assert _counter() == (11, 0, 1)
    assert _balance() == 8
    assert list(UsageEvent.objects.filter(properties__hold="h1").values_list("quantity", "covered")) == [
        (2, 1)
    ]
    assert _paying(api, tenant_a) == (8, 0)
    returned = CreditLedgerEntry.objects.filter(type=CreditLedgerEntry.Type.HOLD_RETURN)
    assert sum(returned.values_list("amount", flat=True)) == 4
    assert {entry.feature.key for entry in returned} == {"ai_credits"}


def test_a_released_hold_gives_every_credit_back(api, tenant_a, waterfall):
    grant(api, tenant_a, 10)
    consume(api, tenant_a, "c1", 10)
    hold(api, tenant_a, "h1", 5)
    assert (_counter(), _balance()) == ((15, 5, 5), 0)
    assert hold(api, tenant_a, "h2", 1)["allowed"] is False
    assert api.post(f"{HOLDS}/h1/release", {}, key=tenant_a.key).status_code == 200
    assert (_counter(), _balance()) == ((10, 0, 0), 10)


def test_a_lease_report_carries_the_credits_part_of_each_use(api, tenant_a, waterfall):
    grant(api, tenant_a, 10)
    consume(api, tenant_a, "c1", 8)
    hold(api, tenant_a, "lease", 5)  # 2 allowance, 3 credits
    events = [{"id": "u1", "quantity": 1}, {"id": "u2", "quantity": 3}]
    response = api.post(f"{HOLDS}/lease/usage", {"events": events}, key=tenant_a.key)
    assert response.status_code == 200, response.json()
    covered = dict(UsageEvent.objects.filter(event_id__in=["u1", "u2"]).values_list("event_id", "covered"))
    assert covered == {"u1": 0, "u2": 2}
    assert api.post(f"{HOLDS}/lease/release", {}, key=tenant_a.key).status_code == 200
    assert _counter() == (12, 0, 2)
    assert _balance() == 6


def test_expired_credits_pay_for_nothing(api, tenant_a, waterfall):
    past = timezone.now() + timedelta(seconds=1)
    grant(api, tenant_a, 10, expires_at=past.isoformat())
    CreditLot.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    consume(api, tenant_a, "c1", 10)
    assert consume(api, tenant_a, "c2")["allowed"] is False
    assert _counter() == (10, 0, 0)


@pytest.mark.parametrize(
    ("credits", "message"),
    [
        ({"feature": "nope"}, "features.summaries.credits: 'nope' is not a credits feature of this project."),
        (
            {"feature": "exports"},
            "features.summaries.credits: 'exports' is not a credits feature of this project.",
        ),
        (
            {"feature": "ai_credits", "cost": 0},
            "features.summaries.credits: cost is an integer ≥ 1, the credits one unit past the limit spends.",
        ),
    ],
)
def test_a_waterfall_must_name_a_credits_feature(api, tenant_a, credits, message):
    p = tenant_a.project
    feature(p, "summaries", Feature.Type.METERED)
    feature(p, "ai_credits", Feature.Type.CREDITS)
    feature(p, "exports", Feature.Type.METERED)
    body = {"key": "pro", "name": "Pro", "features": {"summaries": {"limit": 10, "credits": credits}}}
    response = api.post("/api/v1/products", body, key=tenant_a.key)
    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["message"]) == (
        "invalid_feature_value",
        message,
    )
    assert not ProductFeature.objects.exists()


def test_a_waterfall_is_stored_and_answered_by_the_products_api(api, tenant_a):
    p = tenant_a.project
    feature(p, "summaries", Feature.Type.METERED)
    feature(p, "ai_credits", Feature.Type.CREDITS)
    value = {"limit": 10, "credits": {"feature": "ai_credits"}}
    body = {"key": "pro", "name": "Pro", "features": {"summaries": value}}
    response = api.post("/api/v1/products", body, key=tenant_a.key)
    assert response.status_code == 201, response.json()
    assert response.json()["features"]["summaries"] == {
        "limit": 10,
        "credits": {"feature": "ai_credits", "cost": 1},
    }
    assert ProductFeature.objects.get().credits == {"feature": "ai_credits", "cost": 1}


def test_as_of_now_answers_what_the_live_check_does(api, tenant_a, waterfall):
    grant(api, tenant_a, 10)
    consume(api, tenant_a, "c1", 12)
    hold(api, tenant_a, "h1", 2)  # both paid with credits
    live = check(api, tenant_a, 2)
    assert (live["used"], live["held"], live["credits"]["covered"], live["credits"]["balance"]) == (
        12,
        2,
        4,
        2,
    )
    assert _paying(api, tenant_a) == (2, 4)
    paying = api.get("/api/v1/entitlements/check?customer=u1&feature=ai_credits", key=tenant_a.key).json()
    at = timezone.now().isoformat().replace("+00:00", "Z")
    for feature_key, answer in (("summaries", live), ("ai_credits", paying)):
        url = f"/api/v1/entitlements/check?customer=u1&feature={feature_key}&as_of={at}"
        url += "&quantity=2" if feature_key == "summaries" else ""
        response = api.get(url, key=tenant_a.key)
        assert response.status_code == 200, response.json()
        assert response.json() == answer


def test_explain_says_what_credits_pay_and_where_the_next_unit_comes_from(api, tenant_a, waterfall):
    from entitlements.explain import entitlements_explain

    grant(api, tenant_a, 5)
    consume(api, tenant_a, "c1", 11)
    explained = entitlements_explain(project=tenant_a.project, customer=customer(tenant_a.project, "u1"))
    summaries = next(f for f in explained.features if f.key == "summaries")
    assert summaries.verdict == (
        "Allowed: 11 of 10 used this period. Past the limit ai_credits pays, 2 credits a unit: 3 left, for 1 more "
        "unit (1 paid with credits this period). The next unit comes from credits."
    )
    consume(api, tenant_a, "c2", 1)
    explained = entitlements_explain(project=tenant_a.project, customer=customer(tenant_a.project, "u1"))
    summaries = next(f for f in explained.features if f.key == "summaries")
    assert summaries.verdict == (
        "Not allowed: the limit is used up (12 of 10; resets "
        f"{summaries.answer['resets_at']}). Past the limit ai_credits pays, 2 credits a unit: 1 left, for 0 more "
        "units (2 paid with credits this period). Nothing pays for more."
    )


def test_recorded_usage_past_the_allowance_spends_credits_then_counts_past_the_limit(
    api, tenant_a, waterfall
):
    grant(api, tenant_a, 6)  # 3 units
    events = [
        {"id": "e1", "customer": "u1", "feature": "summaries", "quantity": 9},
        {"id": "e2", "customer": "u1", "feature": "summaries", "quantity": 2},
        {"id": "e3", "customer": "u1", "feature": "summaries", "quantity": 4},
    ]
    response = api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key)
    assert response.status_code == 200, response.json()
    # e1: the allowance; e2: 1 allowance + 1 credits; e3: 2 credits, 2 past the limit (never refused).
    covered = dict(UsageEvent.objects.values_list("event_id", "covered"))
    assert covered == {"e1": 0, "e2": 1, "e3": 2}
    assert _counter() == (15, 0, 3)
    assert _balance() == 0
    again = api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key)
    assert again.json()["duplicates"] == 3
    assert (_counter(), _balance()) == ((15, 0, 3), 0)
    answer = check(api, tenant_a)
    assert (answer["remaining"], answer["allowed"], answer["credits"]["covered"]) == (0, False, 3)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_uses_and_direct_spends_never_overdraw_nor_pass_the_limit(tenant_a):
    """40 threads at once: 30 use one summary each (10 from the allowance, the rest 2 credits each), 10 spend 2
    credits directly; 20 credits in all. Every credit is spent once, the allowance exactly, and what credits paid
    is what the counter and the events say."""
    from tests.entitlements.test_consume import _concurrently, _post

    _plan(tenant_a, {"limit": 10, "credits": {"feature": "ai_credits", "cost": 2}})
    cust = customer(tenant_a.project, "u1")
    credits_feature = Feature.objects.get(project=tenant_a.project, key="ai_credits")
    for amount in (9, 11):
        CreditLot.objects.create(
            project=tenant_a.project,
            customer=cust,
            feature=credits_feature,
            source="grant",
            amount=amount,
            remaining=amount,
        )

    def work(index, client):
        feature_key, quantity = ("summaries", 1) if index < 30 else ("ai_credits", 2)
        body = {"id": f"t{index}", "customer": "u1", "feature": feature_key, "quantity": quantity}
        return feature_key, _post(client, tenant_a.key, CONSUME, body)["allowed"]

    results = _concurrently(40, work)
    used = sum(allowed for key, allowed in results if key == "summaries")
    direct = sum(allowed for key, allowed in results if key == "ai_credits")
    used_now, held, covered = _counter()
    assert (used_now, held, covered) == (used, 0, used - 10)
    assert covered * 2 + direct * 2 == 20
    assert _balance() == 0
    assert sum(UsageEvent.objects.values_list("covered", flat=True)) == covered
    spent = CreditLedgerEntry.objects.filter(type=CreditLedgerEntry.Type.CONSUME)
    assert -sum(spent.values_list("amount", flat=True)) == 20


def test_a_waterfall_cannot_name_another_projects_credits_feature(api, tenant_a, tenant_b):
    feature(tenant_a.project, "summaries", Feature.Type.METERED)
    feature(tenant_b.project, "ai_credits", Feature.Type.CREDITS)  # another project's: not this one's
    value = {"limit": 10, "credits": {"feature": "ai_credits"}}
    body = {"key": "pro", "name": "Pro", "features": {"summaries": value}}
    response = api.post("/api/v1/products", body, key=tenant_a.key)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "features.summaries.credits: 'ai_credits' is not a credits feature of this project."
    )
    assert not ProductFeature.objects.exists()
