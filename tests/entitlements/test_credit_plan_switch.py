"""Plan credits across a switch monthly ↔ yearly: Stripe restarts the period at the change, credits the unused time
and charges the new period in full (`billing_reason=subscription_update`); the new period grants its credits as a
renewal would, and the credits the cut-short period granted for its unused time are owed back as its money is —
taken from what its lot has left, the rest off the new grant — so switching there and back grants nothing twice.
Driven through `PATCH /subscriptions/{id}` against the emulator, on a frozen clock (the interval change tests'
dates: a 31-day first month, switched after 10 days)."""

from datetime import timedelta

import pytest
import time_machine

from billing.models import Invoice, Payment, Subscription
from catalog.models import Product
from customers.models import Customer
from entitlements.models import CreditLedgerEntry, CreditLot, PlanCreditSlice, PlanPeriod
from entitlements.services.plan_credits import plan_period_record
from entitlements.services.sources import PlanLineFact, PlanPeriodFacts
from tests.billing.test_interval_change import CHANGE, MONTH_END, START, T0, YEAR_END, _at
from tests.catalog import price_create
from tests.e2e.test_subscription_lifecycle import _subscribe
from tests.entitlements.test_plan_credits import _check, _consume, _credits, _no_failed_events

pytestmark = pytest.mark.django_db

UNUSED_MONTH = 1000 * (MONTH_END - CHANGE) // (MONTH_END - T0)  # 21 of 31 days: 677


@pytest.fixture
def credits_plan(api, tenant_a, catalog, yearly):
    created = api.post(
        "/api/v1/features", {"key": "ai_credits", "name": "AI credits", "type": "credits"}, key=tenant_a.key
    )
    assert created.status_code == 201, created.json()

    def give(value):
        answer = api.patch("/api/v1/products/pro", {"features": {"ai_credits": value}}, key=tenant_a.key)
        assert answer.status_code == 200, answer.json()

    return give


@pytest.fixture
def yearly(catalog):
    return price_create(catalog.pro, "pro-yearly", 30000, interval="year")


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def _switch(api, tenant_a, stripe_webhooks, price):
    subscription = Subscription.objects.get()
    response = api.patch(f"/api/v1/subscriptions/{subscription.pk}", {"price": price}, key=tenant_a.key)
    assert response.status_code == 200, response.content
    stripe_webhooks.deliver()
    _no_failed_events()


def test_monthly_to_yearly_grants_the_year_and_owes_back_the_unused_month(
    api, tenant_a, credits_plan, clock, stripe_emulator, stripe_webhooks
):
    credits_plan({"limit": 1000, "rollover": 300})
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    first = CreditLot.objects.get()
    assert (first.amount, first.expires_at) == (1000, _at(MONTH_END))
    assert _consume(api, tenant_a, "job-1", 100)["balance"] == 900
    clock.shift(timedelta(days=10))

    _switch(api, tenant_a, stripe_webhooks, "pro-yearly")

    change = Invoice.objects.get(billing_reason="subscription_update")
    period = PlanPeriod.objects.get(
        payment_id=Payment.objects.get(stripe_invoice_id=change.stripe_invoice_id).pk
    )
    assert (period.period_start, period.period_end) == (_at(CHANGE), _at(YEAR_END))
    first.refresh_from_db()
    # 677 of the month's 1,000 were for the 21 days Stripe credited back: taken from the 900 left; the 223 left
    # after that carry into the year (under the 300 cap), and the month's lot ends at the change.
    assert UNUSED_MONTH == 677
    assert (first.remaining, first.expires_at) == (0, _at(CHANGE))
    year = CreditLot.objects.get(plan_period=period)
    assert (year.amount, year.remaining, year.expires_at) == (1000 + 223, 1223, _at(YEAR_END))
    ledger = sorted(CreditLedgerEntry.objects.filter(lot=first).values_list("type", "amount"))
    assert ledger == sorted([("grant", 1000), ("consume", -100), ("revoke", -677), ("rollover", -223)])
    assert _credits(api, tenant_a)["balance"] == 1223
    # The same events again change nothing.
    assert PlanPeriod.objects.count() == 2


def test_a_switch_there_and_back_grants_no_period_twice(
    api, tenant_a, credits_plan, clock, stripe_emulator, stripe_webhooks
):
    """Monthly credits on the yearly plan: monthly → yearly, spend the year's first month at once, back to
    monthly a minute later: the year's first month was all unused time, so the new month's credits are owed
    against it, and nothing more than the customer paid for is left."""
    credits_plan({"limit": 1000, "cadence": "month"})
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    assert _consume(api, tenant_a, "job-1", 1000)["balance"] == 0
    clock.shift(timedelta(days=10))
    _switch(api, tenant_a, stripe_webhooks, "pro-yearly")
    slices = list(PlanCreditSlice.objects.filter(plan_period__period_end=_at(YEAR_END)).order_by("index"))
    assert len(slices) == 12
    # The month was spent: the 677 owed for its unused days are taken back from the year's first month.
    assert [(s.amount, s.owed) for s in slices[:2]] == [(1000, UNUSED_MONTH), (1000, 0)]
    assert _credits(api, tenant_a)["balance"] == 323
    assert _consume(api, tenant_a, "job-2", 323)["balance"] == 0

    clock.shift(timedelta(minutes=1))
    _switch(api, tenant_a, stripe_webhooks, "pro-monthly")
    # The year's first month ran a minute of its 31 days: what its whole 1,000 grant owes for the rest is owed back
    # (spent: taken from the new month's grant), and the eleven months to come stop.
    month = slices[0].ends_at - _at(CHANGE)
    back = 1000 * (month - timedelta(minutes=1)) // month
    monthly = PlanPeriod.objects.order_by("-period_start").first()
    (new,) = PlanCreditSlice.objects.filter(plan_period=monthly)
    assert (new.amount, new.owed) == (1000, back)
    assert sorted(
        PlanCreditSlice.objects.filter(stopped_at__isnull=False).values_list("index", "stop_reason")
    ) == [(i, "replaced by a new paid period") for i in range(1, 12)]
    body = _credits(api, tenant_a)
    assert (body["balance"], body["scheduled"]) == (1000 - back, [])
    # Kept in all: the first month's 10 days (323 of its 1,000), the year's first minute (1 of its 1,000) and the
    # new month: what the customer paid for. Every lot's remaining is its ledger's sum.
    assert 1000 - back == 1
    assert (
        sorted(CreditLedgerEntry.objects.filter(type="grant").values_list("amount", flat=True)) == [1000] * 3
    )
    for lot in CreditLot.objects.all():
        assert (
            sum(CreditLedgerEntry.objects.filter(lot=lot).values_list("amount", flat=True)) == lot.remaining
        )


def _facts(catalog, payment, start, end, reason):
    return PlanPeriodFacts(
        payment_id=payment,
        invoice_id=f"inv_{payment}",
        invoice_number="",
        lines=[PlanLineFact(product_id=catalog.pro.pk, quantity=1, period_start=start, period_end=end)],
        subscription_id="sub_switching",
        reason=reason,
    )


@pytest.mark.parametrize("cadence", [None, "month"])
def test_the_switch_recorded_before_the_period_it_cuts_ends_the_same(
    api, tenant_a, credits_plan, catalog, cadence
):
    """Billing hands the periods in the order their invoices' events arrive: the switch's period before the first
    month's leaves the same lots, balances and ledger as the other order."""
    value = {"limit": 1000, "rollover": 300, **({"cadence": cadence} if cadence else {})}
    credits_plan(value)
    outcomes = []
    for order in ("in order", "switch first"):
        customer = Customer.objects.create(project=tenant_a.project, external_id=f"user-{order}")
        month = _facts(catalog, f"pay_m_{len(outcomes)}", _at(T0), _at(MONTH_END), "subscription_create")
        year = _facts(catalog, f"pay_y_{len(outcomes)}", _at(CHANGE), _at(YEAR_END), "subscription_update")
        with time_machine.travel(_at(CHANGE) + timedelta(seconds=5), tick=False):
            for facts in (month, year) if order == "in order" else (year, month):
                plan_period_record(customer=customer, facts=facts)
        lots = CreditLot.objects.filter(customer=customer).order_by("expires_at", "pk")
        outcomes.append(
            [(lot.amount, lot.remaining, lot.expires_at, lot.plan_period.payment_id[:5]) for lot in lots]
        )
    assert outcomes[0] == outcomes[1]
    # The month's lot ends at the switch; 677 of it owed and taken from what it had; 300 of the rest carried.
    assert outcomes[0][0][:3] == (1000, 23, _at(CHANGE))
    assert outcomes[0][1][:2] == (1300, 1300)


def test_a_switch_to_a_plan_without_credits_ends_the_months_credits_at_once(
    api, tenant_a, credits_plan, catalog, clock, stripe_emulator, stripe_webhooks
):
    """Yearly on a product that gives no credits: nothing is granted, and the month's lot still ends at the
    switch, owing its unused days — a cached answer sees it."""
    credits_plan({"limit": 1000})
    made = api.post("/api/v1/products", {"key": "basic", "name": "Basic"}, key=tenant_a.key)
    assert made.status_code == 201, made.json()
    price_create(
        Product.objects.get(project=tenant_a.project, key="basic"), "basic-yearly", 12000, interval="year"
    )
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    assert _consume(api, tenant_a, "job-1", 100)["balance"] == 900
    clock.shift(timedelta(days=10))
    assert _check(api, tenant_a, 1)["balance"] == 900  # a warm answer, which the switch must refresh

    _switch(api, tenant_a, stripe_webhooks, "basic-yearly")

    lot = CreditLot.objects.get()
    assert (lot.remaining, lot.expires_at) == (900 - UNUSED_MONTH, _at(CHANGE))
    assert CreditLedgerEntry.objects.filter(lot=lot, type="revoke").get().amount == -UNUSED_MONTH
    assert _check(api, tenant_a, 1)["balance"] == 0
    assert _credits(api, tenant_a)["balance"] == 0


def test_a_seats_credits_across_a_switch_there_and_back_are_owed_back_as_the_accounts_are(
    api, tenant_a, catalog, yearly, clock, stripe_emulator, stripe_webhooks
):
    """`pro` gives each of 3 seats 50 `ai_credits` a period. ana spends her month's 50; switched to yearly 10 days
    in, the 33 granted her for the 21 unused days are owed back: the year gives her 50 − 33. Back to monthly a
    minute later, the year's grant is owed back from what she has left and the new month's: switching never
    gives a seat a grant twice."""
    for key, kind in (("seats", "allocation"), ("ai_credits", "credits")):
        assert (
            api.post(
                "/api/v1/features", {"key": key, "name": key, "type": kind}, key=tenant_a.key
            ).status_code
            == 201
        )
    per_seat = {"limit": 0, "per_entity": {"feature": "seats", "on_remove": "forfeit", "credits": 50}}
    answer = api.patch(
        "/api/v1/products/pro", {"features": {"seats": 3, "ai_credits": per_seat}}, key=tenant_a.key
    )
    assert answer.status_code == 200, answer.json()
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    made = api.post(
        "/api/v1/entitlements/entities",
        {"customer": "user-1", "feature": "seats", "entity": "ana"},
        key=tenant_a.key,
    )
    assert made.status_code == 201, made.json()
    spent = api.post(
        "/api/v1/entitlements/consume",
        {"id": "a1", "customer": "user-1", "feature": "ai_credits", "quantity": 50, "entity": "ana"},
        key=tenant_a.key,
    ).json()
    assert (spent["allowed"], spent["entity"]["balance"]) == (True, 0)
    clock.shift(timedelta(days=10))

    _switch(api, tenant_a, stripe_webhooks, "pro-yearly")
    unused = 50 * (MONTH_END - CHANGE) // (MONTH_END - T0)
    assert unused == 33
    year = CreditLot.objects.get(entity="ana", expires_at=_at(YEAR_END))
    assert (year.amount, year.remaining) == (50, 50 - unused)
    first = CreditLot.objects.get(entity="ana", plan_period__period_end=_at(MONTH_END))
    assert (first.remaining, first.expires_at) == (0, _at(CHANGE))
    assert not CreditLot.objects.filter(entity="").exists()  # the account is given none

    clock.shift(timedelta(minutes=1))
    _switch(api, tenant_a, stripe_webhooks, "pro-monthly")
    # The year's 50 for her ran a minute: 49 owed back, 17 of them from what she had left, 32 off the new month.
    back = 50 * (_at(YEAR_END) - _at(CHANGE) - timedelta(minutes=1)) // (_at(YEAR_END) - _at(CHANGE))
    assert back == 49
    year.refresh_from_db()
    assert (year.remaining, year.expires_at) == (0, _at(CHANGE) + timedelta(minutes=1))
    month = CreditLot.objects.get(
        entity="ana", plan_period=PlanPeriod.objects.order_by("-period_start").first()
    )
    assert (month.amount, month.remaining) == (50, 50 - (back - (50 - unused)))
    assert month.remaining == 18
    assert CreditLot.objects.filter(entity="ana").count() == 3
    for lot in CreditLot.objects.all():
        assert sum(lot.entries.values_list("amount", flat=True)) == lot.remaining
