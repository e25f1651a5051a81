"""Margins (#54 point 4): each usage event's cost (its cost table's price of the call) against what the customer
was billed for it — the metered price's amount at the margin, or the credits it burned at what they were paid —
per customer, feature, model, month and currency, to the micro-unit."""

from datetime import UTC, timedelta
from fractions import Fraction

import pytest
from django.utils import timezone

from billing.models import Invoice, Subscription
from billing.services.margins import _lot_values, margins_report
from catalog.models import Feature, Price, Product
from customers.services.customers import customer_ensure_stripe
from entitlements.models import CreditLedgerEntry, CreditLot, PlanPeriod, UsageEvent
from entitlements.services.purchases import purchase_revoke
from tests.billing.factories import PriceFactory
from tests.billing.test_meter_reports import billed
from tests.catalog import price_create, product_create
from tests.entitlements.helpers import (
    customer,
    feature,
    hand,
    hand_subscription,
    paid_payment,
    product,
    subscribe,
)
from tests.entitlements.test_plan_credits import _subscribe

GPT = {
    "input_tokens": {"micros": 2_500_000, "per": 1_000_000},
    "output_tokens": {"micros": 10_000_000, "per": 1_000_000},
}
MINI = {
    "input_tokens": {"micros": 150_000, "per": 1_000_000},
    "output_tokens": {"micros": 600_000, "per": 1_000_000},
}
RATES = {"type": "rates", "rates": {"input_tokens": "0.001", "output_tokens": "0.004"}}


def _ok(response, status=200):
    assert response.status_code == status, response.json()
    return response.json()


def _cost_table(api, key):
    _ok(
        api.post("/api/v1/cost_tables", {"currency": "usd", "models": {"gpt": GPT, "mini": MINI}}, key=key),
        201,
    )


def _usage(api, key, event_id, model, input_tokens, output_tokens, customer="u1", feature="tokens", **extra):
    body = {
        "id": event_id,
        "customer": customer,
        "feature": feature,
        "model": model,
        "dimensions": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        **extra,
    }
    return _ok(api.post("/api/v1/usage", body, key=key), 201)


def _report(project, **kwargs):
    start = kwargs.pop("start", timezone.now() - timedelta(days=1))
    return margins_report(project=project, start=start, end=timezone.now() + timedelta(seconds=1), **kwargs)


def _figures(row):
    return (row.calls, row.units, row.cost_micros, row.overage_micros, row.credits_micros, row.margin_micros)


@pytest.fixture
def metered_tokens(api, tenant_a, stripe_emulator):
    """`tokens`, metered by a graduated price: the first 10 units free, then 3¢ each; units by per-dimension
    rates (1 an input thousand, 4 an output thousand); the calls priced by the cost table."""
    project = tenant_a.project
    feature(project, "tokens", Feature.Type.METERED)
    _ok(api.patch("/api/v1/features/tokens", {"usage_formula": RATES}, key=tenant_a.key))
    usage_product = product_create(project, "usage", "Usage")
    price_create(
        usage_product,
        "calls",
        None,
        interval="month",
        usage_type="metered",
        meter="tokens",
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=[{"up_to": 10, "unit_amount": 0}, {"up_to": "inf", "unit_amount": 3}],
    )
    product(
        project,
        "free",
        {Feature.objects.get(project=project, key="tokens"): None},
    )
    project.default_product = "free"
    project.save()
    _cost_table(api, tenant_a.key)
    cust = billed(customer(project, "u1"))
    customer_ensure_stripe(customer=cust)
    return cust


def test_metered_usage_is_billed_at_the_margin_of_a_graduated_price(api, tenant_a, metered_tokens):
    # gpt: 2,000 in + 1,000 out → 6 units, cost 5,000 + 10,000 µ; mini: 4,000 in + 1,000 out → 8 units, 1,200 µ.
    first = _usage(api, tenant_a.key, "e1", "gpt", 2000, 1000)
    assert (first["quantity"], first["cost"]["micros"]) == (6, 15_000)
    _usage(api, tenant_a.key, "e2", "mini", 4000, 1000)
    _usage(api, tenant_a.key, "e3", "gpt", 2000, 750)  # 5 units, 5,000 + 7,500 µ
    assert set(UsageEvent.objects.values_list("meter_status", flat=True)) == {"reported"}
    rows = _report(tenant_a.project)
    # The free tier bills e1 nothing and e2's first 4 units; e2's other 4 and e3's 5 at 3¢ (30,000 µ a unit).
    assert [(row.customer, row.feature, row.model, row.currency) for row in rows] == [
        ("u1", "tokens", "mini", "usd"),
        ("u1", "tokens", "gpt", "usd"),
    ]
    assert _figures(rows[0]) == (1, 8, 1_200, 120_000, 0, 118_800)
    assert _figures(rows[1]) == (2, 11, 27_500, 150_000, 0, 122_500)
    assert rows[1].margin_bps == 8166
    assert rows[1].period == timezone.now().strftime("%Y-%m")
    # What the events of the period add up to is what Stripe's price bills for 19 units: 9 × 3¢.
    assert sum(row.overage_micros for row in rows) == 9 * 30_000
    # By customer only: one row.
    (whole,) = _report(tenant_a.project, group_by=("customer",))
    assert (whole.customer, whole.feature, whole.model) == ("u1", None, None)
    assert _figures(whole) == (3, 19, 28_700, 270_000, 0, 241_300)


def test_a_report_starting_mid_period_bills_its_events_after_those_before_it(api, tenant_a, metered_tokens):
    _usage(api, tenant_a.key, "e1", "gpt", 2000, 1000)  # 6 units, free
    _usage(api, tenant_a.key, "e2", "mini", 4000, 1000)  # 8 units: 4 free, 4 billed
    later = UsageEvent.objects.get(event_id="e2").timestamp
    (row,) = _report(tenant_a.project, start=later, group_by=("customer",))
    assert _figures(row) == (1, 8, 1_200, 120_000, 0, 118_800)


def test_unbilled_usage_has_its_cost_and_a_negative_margin(api, tenant_a, metered_tokens):
    other = customer(tenant_a.project, "u2")  # no subscription bills u2: nothing at Stripe
    _usage(api, tenant_a.key, "x1", "gpt", 2000, 1000, customer=other.external_id)
    (row,) = _report(tenant_a.project)
    assert (row.customer, row.currency) == ("u2", "usd")
    assert _figures(row) == (1, 6, 15_000, 0, 0, -15_000)
    assert row.margin_bps is None


@pytest.fixture
def waterfall(api, tenant_a, catalog):
    """`tokens` paid from `ai_credits` (1 credit a unit) past an allowance of 0; the cost table prices calls."""
    project = tenant_a.project
    credits = feature(project, "ai_credits", Feature.Type.CREDITS)
    tokens = feature(project, "tokens", Feature.Type.METERED)
    _ok(api.patch("/api/v1/features/tokens", {"usage_formula": RATES}, key=tenant_a.key))
    _cost_table(api, tenant_a.key)
    pro = Product.objects.get(project=project, key="pro")
    _ok(
        api.patch(
            "/api/v1/products/pro",
            {
                "features": {
                    "ai_credits": 1000,
                    "tokens": {"limit": 0, "credits": {"feature": "ai_credits", "cost": 1}},
                }
            },
            key=tenant_a.key,
        )
    )
    return pro, credits, tokens


def test_plan_credits_burn_at_the_plan_fee_over_the_credits_it_granted(
    api, tenant_a, stripe_emulator, stripe_webhooks, waterfall
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)  # pro-monthly: $30 for 1,000 credits
    lot = CreditLot.objects.get(source=CreditLot.Source.PLAN)
    assert lot.amount == 1000
    _usage(api, tenant_a.key, "c1", "gpt", 2000, 1000, customer="user-1")  # 6 units → 6 credits
    _usage(api, tenant_a.key, "c2", "mini", 4000, 1000, customer="user-1")  # 8 credits
    rows = {row.model: row for row in _report(tenant_a.project)}
    # 30,000,000 µ over 1,000 credits: 30,000 µ a credit.
    assert _figures(rows["gpt"]) == (1, 6, 15_000, 0, 180_000, 165_000)
    assert _figures(rows["mini"]) == (1, 8, 1_200, 0, 240_000, 238_800)
    assert (rows["gpt"].credits_burned, rows["mini"].credits_burned) == (6, 8)


def test_purchased_credits_burn_at_their_price_and_granted_ones_at_nothing(api, tenant_a, waterfall):
    project = tenant_a.project
    _, credits, _ = waterfall
    pack = product(project, "pack", {credits: 450})
    buyer = customer(project, "u1")
    payment = paid_payment(buyer, pack, quantity=2)  # 2 × the pack's price for 900 credits
    price = Price.objects.get(pk=payment.items[0]["price"])
    hand(payment=payment)
    assert CreditLot.objects.get(source=CreditLot.Source.PURCHASE).amount == 900
    # Spent by priority: a grant at priority 1 goes first, then the purchase.
    _ok(
        api.post(
            "/api/v1/entitlements/grants",
            {"customer": "u1", "feature": "ai_credits", "value": 4, "reason": "promo", "priority": 1},
            key=tenant_a.key,
        ),
        201,
    )
    tokens = Feature.objects.get(project=project, key="tokens")
    subscribe(
        buyer,
        product(project, "base", {tokens: {"limit": 0, "credits": {"feature": "ai_credits", "cost": 1}}}),
    )
    _usage(api, tenant_a.key, "c1", "gpt", 2000, 1000)  # 6 credits: 4 granted, 2 bought
    (row,) = _report(project)
    assert price.unit_amount == 1500  # $15 a pack: $30 for 900 credits, 33,333⅓ µ a credit
    # The 4 granted credits are worth nothing; the 2 bought, 66,666⅔ µ, rounded half up once.
    assert (row.credits_burned, row.credits_micros, row.cost_micros) == (6, 66_667, 15_000)
    assert row.margin_micros == 51_667


def test_another_projects_usage_is_not_in_the_report(api, tenant_a, tenant_b, metered_tokens):
    _usage(api, tenant_a.key, "e1", "gpt", 2000, 1000)
    assert _report(tenant_b.project) == []


def test_a_holds_events_burn_their_share_of_what_the_hold_took(
    api, tenant_a, stripe_emulator, stripe_webhooks, waterfall
):
    # A hold needs the feature on: an allowance of 2 units before the credits.
    waterfall_2 = {"limit": 2, "credits": {"feature": "ai_credits", "cost": 1}}
    _ok(
        api.patch(
            "/api/v1/products/pro",
            {"features": {"ai_credits": 1000, "tokens": waterfall_2}},
            key=tenant_a.key,
        )
    )
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)  # 1,000 credits at 30,000 µ each
    hold = {"id": "call-1", "customer": "user-1", "feature": "tokens", "model": "gpt"}
    placed = api.post(
        "/api/v1/entitlements/holds",
        {**hold, "dimensions": {"input_tokens": 4000, "output_tokens": 2000}},  # 12 units held
        key=tenant_a.key,
    )
    body = _ok(placed)
    assert body["hold"] is not None, body
    assert body["hold"]["quantity"] == 12
    confirmed = api.post(
        "/api/v1/entitlements/holds/call-1/confirm",
        {"model": "gpt", "dimensions": {"input_tokens": 2000, "output_tokens": 1000}},  # 6 units used
        key=tenant_a.key,
    )
    assert _ok(confirmed)["hold"]["confirmed"] == 6
    (row,) = _report(tenant_a.project)
    # 6 units used: 2 from the allowance, 4 credits burned (the other 6 held given back), 30,000 µ each.
    assert (row.model, row.credits_burned) == ("gpt", 4)
    assert _figures(row) == (1, 6, 15_000, 0, 120_000, 105_000)


def test_money_in_two_currencies_is_never_summed(api, tenant_a, metered_tokens):
    # From now, the calls are priced in euros; the metered price bills dollars.
    euros = {"currency": "eur", "models": {"gpt": GPT}, "starts_at": timezone.now().isoformat()}
    _ok(api.post("/api/v1/cost_tables", euros, key=tenant_a.key), 201)
    _usage(api, tenant_a.key, "e1", "gpt", 4000, 3000)  # 16 units: 10 free, 6 at 3¢; cost 40,000 µ€
    rows = {row.currency: row for row in _report(tenant_a.project, group_by=("customer",))}
    assert set(rows) == {"eur", "usd"}
    assert _figures(rows["eur"]) == (1, 16, 40_000, 0, 0, -40_000)
    assert _figures(rows["usd"]) == (0, 0, 0, 180_000, 0, 180_000)


def test_a_calls_units_beyond_its_hold_burn_as_usage_of_their_own(
    api, tenant_a, stripe_emulator, stripe_webhooks, waterfall
):
    waterfall_2 = {"limit": 2, "credits": {"feature": "ai_credits", "cost": 1}}
    _ok(
        api.patch(
            "/api/v1/products/pro",
            {"features": {"ai_credits": 1000, "tokens": waterfall_2}},
            key=tenant_a.key,
        )
    )
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    hold = {"id": "call-1", "customer": "user-1", "feature": "tokens", "model": "gpt"}
    placed = api.post(
        "/api/v1/entitlements/holds",
        {**hold, "dimensions": {"input_tokens": 2000, "output_tokens": 1000}},  # 6 units held
        key=tenant_a.key,
    )
    assert _ok(placed)["hold"]["quantity"] == 6
    confirmed = api.post(
        "/api/v1/entitlements/holds/call-1/confirm",
        {"model": "gpt", "dimensions": {"input_tokens": 4000, "output_tokens": 2000}},  # 12 units used
        key=tenant_a.key,
    )
    assert _ok(confirmed)["hold"]["overrun"] == 6
    (row,) = _report(tenant_a.project)
    # The hold: 2 from the allowance, 4 credits; beyond it, 6 more credits: 10 burned at 30,000 µ. The cost is
    # the confirmed call's (30,000 µ), on the hold's event; the overrun event carries none, and is the call's:
    # one call, its model.
    assert (row.model, row.calls, row.units, row.credits_burned, row.credits_micros) == (
        "gpt",
        1,
        12,
        10,
        300_000,
    )
    assert row.cost_micros == 30_000


def test_a_yearly_plans_monthly_credits_share_the_years_fee(
    api, tenant_a, stripe_emulator, stripe_webhooks, waterfall
):
    monthly = {"limit": 1000, "cadence": "month"}
    tokens = {"limit": 0, "credits": {"feature": "ai_credits", "cost": 1}}
    _ok(
        api.patch(
            "/api/v1/products/pro", {"features": {"ai_credits": monthly, "tokens": tokens}}, key=tenant_a.key
        )
    )
    price_create(
        Product.objects.get(project=tenant_a.project, key="pro"), "pro-yearly", 30000, interval="year"
    )
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, price="pro-yearly")
    assert CreditLot.objects.get(source=CreditLot.Source.PLAN).amount == 1000  # the first month's, so far
    _usage(api, tenant_a.key, "c1", "gpt", 2000, 1000, customer="user-1")  # 6 credits
    (row,) = _report(tenant_a.project)
    # $300 for 12 × 1,000 credits: 25,000 µ a credit, not the 300,000 µ of the one month granted so far.
    assert (row.credits_burned, row.credits_micros, row.margin_micros) == (6, 150_000, 135_000)


@pytest.mark.postgres
def test_more_events_than_a_statement_binds_parameters_are_reported(tenant_a):
    """PostgreSQL binds at most 65,535 parameters a statement: a month of 70,000 uses of a credits feature (each
    looked up in the ledger) is read in chunks."""
    project = tenant_a.project
    credits = feature(project, "ai_credits", Feature.Type.CREDITS)
    buyer = customer(project, "u1")
    now = timezone.now()
    # Spread over the last hour, within this month (in a month's first hour, over what has passed of it).
    month_start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    span = max(1, min(3600, int((now - month_start).total_seconds())))
    UsageEvent.objects.bulk_create(
        UsageEvent(
            project=project,
            customer=buyer,
            feature=credits,
            event_id=f"e{index}",
            kind=UsageEvent.Kind.CONSUME,
            quantity=1,
            timestamp=now - timedelta(seconds=index % span),
        )
        for index in range(70_000)
    )
    (row,) = _report(project)
    assert (row.customer, row.feature, row.calls, row.units, row.credits_burned) == (
        "u1",
        "ai_credits",
        70_000,
        70_000,
        0,
    )


def _bought(api, tenant_a, waterfall):
    """u1 bought 900 credits for $30 (33,333⅓ µ a credit) and pays `tokens` with them past an allowance of 0."""
    project = tenant_a.project
    _, credits, tokens = waterfall
    buyer = customer(project, "u1")
    hand(payment=paid_payment(buyer, product(project, "pack", {credits: 450}), quantity=2))
    subscribe(
        buyer,
        product(project, "base", {tokens: {"limit": 0, "credits": {"feature": "ai_credits", "cost": 1}}}),
    )
    return buyer


@pytest.mark.parametrize("properties", [{"hold": "order-77"}, {"hold": "order-77", "overrun": True}])
def test_a_tenants_own_property_named_hold_is_just_a_property(api, tenant_a, waterfall, properties):
    _bought(api, tenant_a, waterfall)
    _usage(api, tenant_a.key, "c1", "gpt", 2000, 1000, properties=properties)  # 6 credits
    (row,) = _report(tenant_a.project)
    assert (row.calls, row.credits_burned, row.credits_micros) == (1, 6, 200_000)


def test_refunded_credits_were_paid_nothing(api, tenant_a, waterfall):
    buyer = _bought(api, tenant_a, waterfall)
    _usage(api, tenant_a.key, "c1", "gpt", 2000, 1000)
    assert _report(tenant_a.project)[0].credits_micros == 200_000
    purchase_revoke(
        customer=buyer,
        payment_id=CreditLot.objects.get(source="purchase").purchase.payment_id,
        reason="refund",
    )
    (row,) = _report(tenant_a.project)
    assert (row.credits_burned, row.credits_micros, row.margin_micros) == (6, 0, -15_000)


def test_usage_billed_by_a_subscription_ended_since_keeps_its_overage(api, tenant_a, metered_tokens):
    _usage(api, tenant_a.key, "e1", "gpt", 2000, 1000)
    _usage(api, tenant_a.key, "e2", "mini", 4000, 1000)
    subscription = Subscription.objects.get(customer=metered_tokens)
    subscription.status = Subscription.Status.CANCELED
    subscription.save()
    hand_subscription(subscription)
    (row,) = _report(tenant_a.project, group_by=("customer",))
    assert row.overage_micros == 120_000  # 14 units, 4 past the free 10, at 3¢


def test_credits_rolled_into_a_period_are_not_bought_with_its_fee(tenant_a):
    """A plan period's lot holds its own 1,000 credits and 500 rolled over from the period before: its $30 paid
    for 1,000 (30,000 µ each), not 1,500 (20,000 µ)."""
    project = tenant_a.project
    buyer = customer(project, "u9")
    credits = feature(project, "ai_credits", Feature.Type.CREDITS)
    plan = PriceFactory(
        project=project, type=Price.Type.RECURRING, interval="month", stripe_price_id="price_plan"
    )
    lots = []
    for n in (1, 2):
        invoice = Invoice.objects.create(
            project=project,
            customer=buyer,
            stripe_invoice_id=f"in_{n}",
            status="paid",
            currency="usd",
            lines=[
                {"amount": 3000, "proration": False, "stripe_price_id": plan.stripe_price_id},
                {"amount": 700, "proration": False, "stripe_price_id": "price_usage_before_a_change"},
            ],
        )
        period = PlanPeriod.objects.create(
            project=project,
            customer=buyer,
            payment_id=f"pay_{n}",
            invoice_id=invoice.pk,
            product=plan.product,
        )
        amount = 1000 if n == 1 else 1500
        lot = CreditLot.objects.create(
            project=project,
            customer=buyer,
            feature=credits,
            source=CreditLot.Source.PLAN,
            plan_period=period,
            amount=amount,
            remaining=amount,
        )
        lots.append(lot)
    CreditLedgerEntry.objects.create(
        project=project,
        customer=buyer,
        feature=credits,
        lot=lots[1],
        type=CreditLedgerEntry.Type.ROLLOVER,
        amount=500,
    )
    values = _lot_values([lot.pk for lot in lots])
    assert values[lots[0].pk] == (Fraction(30_000), "usd")
    assert values[lots[1].pk] == (Fraction(30_000), "usd")


def test_a_volume_price_shares_the_periods_amount_among_its_units(api, tenant_a, metered_tokens):
    # Every unit at the tier the whole quantity reaches: up to 10 at 5¢, beyond at 3¢ (14 units: 42¢, not 14 × 5¢).
    Price.objects.filter(project=tenant_a.project, key="calls").update(
        tiers_mode=Price.TiersMode.VOLUME,
        tiers=[{"up_to": 10, "unit_amount": 5}, {"up_to": "inf", "unit_amount": 3}],
    )
    _usage(api, tenant_a.key, "e1", "gpt", 2000, 1000)  # 6 units
    _usage(api, tenant_a.key, "e2", "gpt", 4000, 1000)  # 8 units
    (whole,) = _report(tenant_a.project)
    assert whole.overage_micros == 420_000  # what the volume price bills for 14 units
    # From e2 on: e2's share, 42¢ less e1's 6/14 of it (18¢), never a negative amount at the tier.
    (later,) = _report(tenant_a.project, start=UsageEvent.objects.get(event_id="e2").timestamp)
    assert later.overage_micros == 240_000
