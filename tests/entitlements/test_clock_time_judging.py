"""A customer on a Stripe test clock set in the past is judged at the clock's time by every part of
entitlements (issue #49 point 15): a hold's creation, expiry and sweep, the auto-recharge's balance checks, the
explain page, and usage recorded without a timestamp (stamped at the clock's time, checked against it, sent to
Stripe's meter with it and billed in the clock's period)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from billing.models import Invoice, Payment
from catalog.models import Feature, ProductFeature
from customers.models import Customer
from entitlements.explain import entitlements_explain
from entitlements.models import CreditLot, Hold, UsageEvent
from entitlements.tasks import holds_expire_sweep
from tests.billing.test_interval_change import _subscribe_with_calls
from tests.billing.test_interval_change import allowance as allowance
from tests.billing.test_interval_change import metered as metered
from tests.entitlements.helpers import feature, product
from tests.entitlements.test_auto_recharge import balance, configure, events, intents_at_stripe, save_card
from tests.entitlements.test_consume import consume

pytestmark = pytest.mark.django_db


def _z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _clock_customer(api, tenant, external_id: str = "u1") -> tuple[dict, datetime]:
    """A test clock frozen 60 days ago and `external_id` on it; (the clock, its frozen time)."""
    start = (timezone.now() - timedelta(days=60)).replace(microsecond=0)
    clock = api.post("/api/v1/test_clocks", {"frozen_time": _z(start)}, key=tenant.key).json()
    made = api.post(
        "/api/v1/customers", {"external_id": external_id, "test_clock": clock["id"]}, key=tenant.key
    )
    assert made.status_code == 201, made.json()
    return clock, start


def _advance(api, tenant, clock: dict, to: datetime) -> None:
    advanced = api.post(f"/api/v1/test_clocks/{clock['id']}/advance", {"frozen_time": _z(to)}, key=tenant.key)
    assert advanced.status_code == 200, advanced.json()
    assert api.get(f"/api/v1/test_clocks/{clock['id']}", key=tenant.key).json()["status"] == "ready"


@pytest.fixture
def plan(tenant_a):
    """Everyone may use 5 `exports` a period (the default product); `ai_credits` come from grants."""
    project = tenant_a.project
    exports = feature(project, "exports", Feature.Type.METERED)
    credits = feature(project, "ai_credits", Feature.Type.CREDITS)
    product(project, "free", {exports: 5})
    project.default_product = "free"
    project.save()
    return {"exports": exports, "credits": credits}


def _hold(api, tenant, hold_id: str, feature_key: str, quantity: int, **extra) -> dict:
    body = {"id": hold_id, "customer": "u1", "feature": feature_key, "quantity": quantity, **extra}
    response = api.post("/api/v1/entitlements/holds", body, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def test_a_clock_customers_hold_is_made_and_expires_on_the_clock(api, tenant_a, plan, stripe_sdk):
    clock, start = _clock_customer(api, tenant_a)
    # Credits that end a week into the clock's calendar: long past on the wall, spendable on the clock.
    grant = {"customer": "u1", "feature": "ai_credits", "value": 50, "reason": "Trial"}
    made = api.post(
        "/api/v1/entitlements/grants",
        {**grant, "expires_at": _z(start + timedelta(days=7))},
        key=tenant_a.key,
    )
    assert made.status_code == 201, made.json()

    exports = _hold(api, tenant_a, "h-exports", "exports", 2, expires_in=600)
    credits = _hold(api, tenant_a, "h-credits", "ai_credits", 10, expires_in=600)
    assert (exports["allowed"], credits["allowed"]) == (True, True)
    rows = {hold.hold_id: hold for hold in Hold.objects.all()}
    for hold in rows.values():
        assert (hold.status, hold.created_at, hold.expires_at) == (
            "active",
            start,
            start + timedelta(seconds=600),
        )
    assert list(CreditLot.objects.values_list("remaining", flat=True)) == [40]

    # An hour of real time: the clock stands, so the holds stand (the sweep and a read alike).
    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        assert holds_expire_sweep() == 0
        read = api.get("/api/v1/entitlements/holds/h-credits", key=tenant_a.key)
        assert read.json()["hold"]["status"] == "active", read.json()
    assert set(Hold.objects.values_list("status", flat=True)) == {"active"}

    _advance(api, tenant_a, clock, start + timedelta(seconds=601))
    assert holds_expire_sweep() == 2
    ended = start + timedelta(seconds=601)
    assert sorted(Hold.objects.values_list("hold_id", "status", "ended_at")) == [
        ("h-credits", "expired", ended),
        ("h-exports", "expired", ended),
    ]
    assert list(CreditLot.objects.values_list("remaining", flat=True)) == [50]


@pytest.fixture
def recharge_credits(tenant_a, catalog, api, stripe_sdk):
    """u1 on a clock 60 days ago with 150 `ai_credits` ending a week into the clock's calendar (long past on
    the wall); the catalog's `credits-1000` pack grants 1,000 and u1's saved card pays for it."""
    ai = feature(tenant_a.project, "ai_credits", Feature.Type.CREDITS)
    ProductFeature.objects.create(product=catalog.credits, feature=ai, value=1000)
    _, start = _clock_customer(api, tenant_a)
    body = {"customer": "u1", "feature": "ai_credits", "value": 150, "reason": "welcome"}
    body["expires_at"] = _z(start + timedelta(days=7))
    assert api.post("/api/v1/entitlements/grants", body, key=tenant_a.key).status_code == 201
    return save_card(stripe_sdk(), tenant_a.project, "u1", "pm_card_visa")


def test_a_clock_customers_auto_recharge_reads_the_balance_on_the_clock(
    api, tenant_a, recharge_credits, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    # 150 on the clock, above the mark: configuring it charges nothing (the wall's balance would be 0).
    made = configure(api, tenant_a)
    assert made.status_code == 201, made.json()
    assert (made.json()["status"], made.json()["attempts"]) == ("armed", 0)
    assert not Payment.objects.exists()
    assert intents_at_stripe(sdk, tenant_a.project) == []

    # A spend to 90 starts one charge; its announcement counts the clock's 90 with the 1,000 bought.
    assert consume(api, tenant_a.key, "c1", "ai_credits", 60)["balance"] == 90
    payment = Payment.objects.get()
    assert (payment.flow, payment.status, payment.amount) == ("off_session", "succeeded", 1500)
    assert [(i.status, i.amount) for i in intents_at_stripe(sdk, tenant_a.project)] == [("succeeded", 1500)]
    assert balance(api, tenant_a) == 1090
    assert [(e["credits"], e["balance"]) for e in events("credits.recharged")] == [(1000, 1090)]


def test_the_explain_page_judges_a_clock_customer_at_the_clocks_time(api, tenant_a, plan, stripe_sdk):
    """The admin's "explain entitlements" says what the API answers: a grant and its credits that end a week
    into the clock's calendar give the feature, and the next change is the first end on the clock (theirs or
    the metered feature's period's)."""
    _, start = _clock_customer(api, tenant_a)
    ends = start + timedelta(days=7)
    grant = {
        "customer": "u1",
        "feature": "ai_credits",
        "value": 50,
        "reason": "Trial",
        "expires_at": _z(ends),
    }
    assert api.post("/api/v1/entitlements/grants", grant, key=tenant_a.key).status_code == 201
    customer = Customer.objects.get(project=tenant_a.project, external_id="u1")

    explanation = entitlements_explain(project=tenant_a.project, customer=customer)
    (credits,) = (f for f in explanation.features if f.key == "ai_credits")
    (exports,) = (f for f in explanation.features if f.key == "exports")
    resets = datetime.fromisoformat(exports.answer["resets_at"])  # the clock's month's end
    assert start < resets <= start + timedelta(days=31)
    assert (explanation.now, explanation.next_change) == (start, min(ends, resets))
    assert (credits.allowed, credits.answer["balance"], credits.verdict) == (
        True,
        50,
        "Allowed: 50 credits left.",
    )
    assert sorted((s.kind, s.effect, s.value) for s in credits.sources) == [
        ("credit_lot", "gives", 50),
        ("grant", "gives", 50),
    ]


def test_usage_without_a_timestamp_counts_in_the_clocks_period_and_is_billed_at_its_renewal(
    api, tenant_a, catalog, allowance, metered, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """Usage recorded without `timestamp` for a clock's customer is stamped at the clock's time: it counts in
    the clock's current period (`GET /usage`), goes to Stripe's meter with that timestamp (Stripe accepts a clock
    customer's meter events relative to the clock's frozen time), and the clock's renewal invoices it."""
    clock, start = _clock_customer(api, tenant_a, "user-1")
    subscription = _subscribe_with_calls(api, tenant_a, stripe_emulator, stripe_webhooks)
    assert subscription.current_period_start == start
    first_end = subscription.current_period_end

    recorded = api.post(
        "/api/v1/usage",
        {"id": "u-1", "customer": "user-1", "feature": "api_calls", "quantity": 7},
        key=tenant_a.key,
    )
    assert recorded.status_code == 201, recorded.json()
    event = UsageEvent.objects.get(event_id="u-1")
    assert (event.timestamp, event.period_start, event.meter_status) == (start, start, "reported")
    usage = api.get("/api/v1/usage?customer=user-1&feature=api_calls", key=tenant_a.key).json()
    assert (usage["quantity"], datetime.fromisoformat(usage["period_start"])) == (7, start)

    # A timestamp an hour ahead of the clock is in its future; one a period before its start is too old.
    for moment, code in (
        (start + timedelta(hours=1), "timestamp_in_future"),
        (start - timedelta(days=40), "timestamp_too_old"),
    ):
        body = {
            "id": f"u-{code}",
            "customer": "user-1",
            "feature": "api_calls",
            "quantity": 1,
            "timestamp": _z(moment),
        }
        refused = api.post("/api/v1/usage", body, key=tenant_a.key)
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, code)
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["u-1"]

    _advance(api, tenant_a, clock, first_end + timedelta(hours=1))
    stripe_webhooks.deliver()
    renewal = Invoice.objects.get(billing_reason="subscription_cycle")
    calls = [line for line in renewal.lines if line["stripe_price_id"] == metered[0].stripe_price_id]
    assert [(line["quantity"], line["amount"]) for line in calls] == [(7, 14)]
