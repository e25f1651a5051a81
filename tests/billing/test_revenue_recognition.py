"""Revenue recognition, end to end: a subscription paid at Stripe (the emulator, through the official SDK) is
earned day by day over its period; a refund takes back what is still deferred; a cancellation earns the rest on
the day the subscription ended; a one-off purchase is earned at fulfilment. The month's figures are asserted to the
minor unit, and the deferred revenue always moves as opening + added − recognised = closing."""

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command

from billing.models import Invoice, RevenueSchedule, recognised_by
from billing.services.recognition import recognition_sync, spread
from billing.services.revenue_report import next_month, revenue_months
from customers.models import Customer
from customers.services.customers import customer_ensure_stripe
from tests.billing.payment_factories import paid_credit_packs

pytestmark = pytest.mark.django_db


def _subscribe(api, tenant, sdk, stripe_webhooks) -> dict:
    api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant.key)
    stripe_customer = customer_ensure_stripe(customer=Customer.objects.get(external_id="user-1"))
    pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer}).id
    sdk.v1.customers.update(stripe_customer, {"invoice_settings": {"default_payment_method": pm}})
    created = api.post(
        "/api/v1/subscriptions", {"customer": "user-1", "price": "pro-monthly"}, key=tenant.key
    )
    assert created.status_code == 201, created.json()
    stripe_webhooks.deliver()
    return created.json()


def _expected(amount: int, start: date, end: date, day: date) -> int:
    """What `amount` spread evenly over [start, end) has earned by the end of `day`, in whole minor units."""
    days = (end - start).days
    return amount * min(max((day - start).days + 1, 0), days) // days


def test_a_schedule_earns_its_amount_day_by_day_exactly():
    jan = {"start_day": date(2026, 1, 15), "end_day": date(2026, 2, 15), "booked_on": date(2026, 1, 15)}

    def by(day: date, **more: date) -> int:
        return recognised_by(amount=3000, immediate=0, day=day, **{**jan, "stopped_on": None, **more})

    assert by(date(2026, 1, 14)) == 0
    assert by(date(2026, 1, 15)) == 96  # 3000 / 31 days, rounded down
    assert by(date(2026, 1, 31)) == 1645  # 17 of 31 days
    assert by(date(2026, 2, 14)) == 3000
    assert by(date(2026, 3, 1)) == 3000
    # Booked late (paid on Feb 1): nothing before, then every elapsed day at once.
    assert by(date(2026, 1, 31), booked_on=date(2026, 2, 1)) == 0
    assert by(date(2026, 2, 1), booked_on=date(2026, 2, 1)) == 1741
    # Stopped on Feb 1 (the subscription ended): the rest on that day.
    assert by(date(2026, 1, 31), stopped_on=date(2026, 2, 1)) == 1645
    assert by(date(2026, 2, 1), stopped_on=date(2026, 2, 1)) == 3000
    # A reversal of 1000 of which 400 was already recognised: -400 at once, -600 over the rest of the period.
    rev = {"amount": -1000, "immediate": -400, "start_day": date(2026, 2, 1), "end_day": date(2026, 2, 15)}
    assert recognised_by(**rev, booked_on=date(2026, 2, 1), stopped_on=None, day=date(2026, 2, 1)) == -442
    assert recognised_by(**rev, booked_on=date(2026, 2, 1), stopped_on=None, day=date(2026, 2, 14)) == -1000
    # A split in proportion, to the unit, the largest remainders taking what rounding leaves.
    assert spread(1000, [1, 1, 1]) == [334, 333, 333]
    assert spread(-1000, [2, 1]) == [-667, -333]


def test_a_paid_subscription_is_earned_over_its_period_and_a_refund_takes_back_what_is_deferred(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    subscription = _subscribe(api, tenant_a, sdk, stripe_webhooks)
    invoice = Invoice.objects.get(project=tenant_a.project, status="paid")
    assert invoice.paid_at is not None
    start = datetime.fromisoformat(subscription["current_period_start"]).astimezone(UTC).date()
    end = datetime.fromisoformat(subscription["current_period_end"]).astimezone(UTC).date()
    month = start.replace(day=1)
    month_end = next_month(month) - timedelta(days=1)

    [this, following] = revenue_months(tenant_a.project, month, next_month(month))

    earned = _expected(3000, start, end, month_end)
    [usd] = this.currencies
    assert (usd.currency, usd.billed, usd.refunds, usd.recognised) == ("usd", 3000, 0, earned)
    assert (usd.deferred_opening, usd.deferred_added, usd.deferred_closing) == (0, 3000, 3000 - earned)
    assert [(p.name, p.billed, p.recognised) for p in usd.products] == [("Professional", 3000, earned)]
    # The month after earns the rest (none when the period is a calendar month: subscribed on the 1st).
    assert [
        (c.billed, c.recognised, c.deferred_opening, c.deferred_closing) for c in following.currencies
    ] == ([(0, 3000 - earned, 3000 - earned, 0)] if earned < 3000 else [])
    assert recognition_sync(tenant_a.project) == 0  # nothing changed: nothing written

    # A refund of 1000 today takes it from what is still deferred: the period now earns 2000 in all.
    payment = api.get("/api/v1/payments", key=tenant_a.key, json_body={"customer": "user-1"}).json()["data"][
        0
    ]
    refunded = api.post(f"/api/v1/payments/{payment['id']}/refund", {"amount": 1000}, key=tenant_a.key)
    assert refunded.status_code == 200, refunded.content
    stripe_webhooks.deliver()

    [this, following] = revenue_months(tenant_a.project, month, next_month(month))

    today = datetime.now(UTC).date()
    taken = 1000 * min(max((month_end - today).days + 1, 0), (end - today).days) // (end - today).days
    [usd] = this.currencies
    assert (usd.billed, usd.refunds) == (3000, 1000)
    assert usd.recognised == earned - taken
    assert usd.deferred_closing == 2000 - usd.recognised
    assert usd.deferred_opening + usd.deferred_added - usd.recognised == usd.deferred_closing
    assert usd.recognised + sum(c.recognised for c in following.currencies) == 2000
    assert [c.deferred_closing for c in following.currencies] in ([0], [])
    assert RevenueSchedule.objects.filter(kind="reversal").count() == 1
    assert recognition_sync(tenant_a.project) == 0

    # Canceled now: what is still deferred is earned today, and nothing is left for next month.
    canceled = api.post(
        f"/api/v1/subscriptions/{subscription['id']}/cancel", {"at_period_end": False}, key=tenant_a.key
    )
    assert canceled.status_code == 200, canceled.json()
    stripe_webhooks.deliver()

    [this, following] = revenue_months(tenant_a.project, month, next_month(month))

    [usd] = this.currencies
    assert (usd.billed, usd.refunds, usd.recognised, usd.deferred_closing) == (3000, 1000, 2000, 0)
    assert following.currencies == []


def test_a_one_off_purchase_is_earned_at_fulfilment_and_its_refund_given_back_at_once(
    api, tenant_a, tenant_b, catalog, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk)
    stripe_webhooks.deliver()
    refunded = api.post(f"/api/v1/payments/{paid['id']}/refund", {"amount": 500}, key=tenant_a.key)
    assert refunded.status_code == 200, refunded.content
    stripe_webhooks.deliver()
    month = datetime.now(UTC).date().replace(day=1)

    out = io.StringIO()
    call_command(
        "revenue_report",
        "--project",
        tenant_a.project.slug,
        "--month",
        f"{month:%Y-%m}",
        "--format",
        "csv",
        stdout=out,
    )

    assert out.getvalue().splitlines() == [
        "month,currency,product,product_name,billed,refunds,recognised,deferred_opening,deferred_added,"
        "deferred_recognised,deferred_closing,credits_opening,credits_added,credits_recognised,credits_closing",
        f"{month:%Y-%m},usd,,,3000,500,2500,0,2500,2500,0,0,0,0,0",
        f"{month:%Y-%m},usd,{catalog.credit_pack.product_id},Credit pack,3000,500,2500,0,2500,2500,0,0,0,0,0",
    ]
    # Another project sees none of it.
    assert revenue_months(tenant_b.project, month, month)[0].currencies == []
    assert not RevenueSchedule.objects.filter(project=tenant_b.project).exists()


def test_the_api_answers_a_projects_months_and_refuses_a_bad_month(
    api, tenant_a, tenant_b, catalog, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk)
    stripe_webhooks.deliver()
    month = datetime.now(UTC).date().replace(day=1)
    path = "/api/v1/metrics/revenue_recognition"

    answer = api.get(f"{path}?month={month:%Y-%m}&months=2", key=tenant_a.key)

    assert answer.status_code == 200, answer.json()
    figures = {
        "billed": 3000,
        "refunds": 0,
        "recognised": 3000,
        "deferred": {"opening": 0, "added": 3000, "recognised": 3000, "closing": 0},
        "credits": {"opening": 0, "added": 0, "recognised": 0, "closing": 0},
    }
    previous = month_start_before(month)
    assert answer.json() == {
        "object": "revenue_recognition",
        "months": [
            {"month": f"{previous:%Y-%m}", "currencies": []},
            {
                "month": f"{month:%Y-%m}",
                "currencies": [
                    {
                        "currency": "usd",
                        **figures,
                        "products": [
                            {
                                "product": catalog.credit_pack.product_id,
                                "name": "Credit pack",
                                **figures,
                            }
                        ],
                    }
                ],
            },
        ],
    }
    assert paid["amount"] == 3000
    # Another project's key reads its own, empty, months.
    theirs = api.get(f"{path}?month={month:%Y-%m}", key=tenant_b.key).json()
    assert theirs["months"] == [{"month": f"{month:%Y-%m}", "currencies": []}]
    for query, param in [
        ("month=2026-13", "month"),
        ("month=2026-1", "month"),
        ("month=1969-12", "month"),
        ("month=0001-01&months=2", "month"),
        ("month=9999-12", "month"),
        ("months=25", "months"),
        ("months=0", "months"),
        ("months=%C2%B2", "months"),  # a superscript two: a digit to Python, not a number
    ]:
        refused = api.get(f"{path}?{query}", key=tenant_a.key)
        assert refused.status_code == 400, query
        assert refused.json()["error"]["param"] == param, query
    # The earliest and latest months allowed answer.
    assert api.get(f"{path}?month=1970-01&months=1", key=tenant_a.key).status_code == 200
    assert api.get(f"{path}?month=2999-12", key=tenant_a.key).status_code == 200


def month_start_before(month: date) -> date:
    return (month - timedelta(days=1)).replace(day=1)


def test_prepaid_credits_are_a_liability_recognised_as_they_are_spent(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks
):
    from catalog.models import Feature, ProductFeature
    from tests.entitlements.helpers import feature

    tokens = feature(tenant_a.project, "tokens", Feature.Type.CREDITS)
    ProductFeature.objects.create(product=catalog.credits, feature=tokens, value=1000)
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk)  # two packs: 2000 tokens for 3000
    stripe_webhooks.deliver()
    month = datetime.now(UTC).date().replace(day=1)

    [report] = revenue_months(tenant_a.project, month, month)

    [usd] = report.currencies
    assert (usd.billed, usd.refunds, usd.recognised) == (3000, 0, 0)
    assert (usd.credits_opening, usd.credits_added, usd.credits_recognised, usd.credits_closing) == (
        0,
        3000,
        0,
        3000,
    )
    assert (usd.deferred_added, usd.deferred_closing) == (0, 0)
    assert RevenueSchedule.objects.get(project=tenant_a.project).kind == "credits"

    # 500 tokens spent: a quarter of what was bought is earned.
    spent = api.post(
        "/api/v1/entitlements/consume",
        {"id": "c1", "customer": "user-1", "feature": "tokens", "quantity": 500},
        key=tenant_a.key,
    )
    assert spent.status_code == 200, spent.json()
    assert spent.json()["allowed"] is True

    [usd] = revenue_months(tenant_a.project, month, month)[0].currencies

    assert (usd.billed, usd.recognised, usd.credits_recognised, usd.credits_closing) == (3000, 750, 750, 2250)

    # A refund of 1000 leaves the liability (the tokens left were worth 2250): no revenue is given back.
    refunded = api.post(f"/api/v1/payments/{paid['id']}/refund", {"amount": 1000}, key=tenant_a.key)
    assert refunded.status_code == 200, refunded.content
    stripe_webhooks.deliver()

    [usd] = revenue_months(tenant_a.project, month, month)[0].currencies

    assert (usd.billed, usd.refunds, usd.recognised) == (3000, 1000, 750)
    assert (usd.credits_opening, usd.credits_added, usd.credits_recognised, usd.credits_closing) == (
        0,
        2000,
        750,
        1250,
    )
    # Spending the rest earns no more than the money left: 1250.
    spent = api.post(
        "/api/v1/entitlements/consume",
        {"id": "c2", "customer": "user-1", "feature": "tokens", "quantity": 1500},
        key=tenant_a.key,
    )
    assert spent.json()["allowed"] is True
    [usd] = revenue_months(tenant_a.project, month, month)[0].currencies
    assert (usd.recognised, usd.credits_closing, usd.deferred_closing) == (2000, 0, 0)


def test_a_months_close_ties_out_and_writes_the_report_and_the_journal(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks, tmp_path
):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk)
    stripe_webhooks.deliver()
    refunded = api.post(f"/api/v1/payments/{paid['id']}/refund", {"amount": 500}, key=tenant_a.key)
    assert refunded.status_code == 200, refunded.content
    stripe_webhooks.deliver()
    month = f"{datetime.now(UTC):%Y-%m}"
    out = io.StringIO()

    call_command(
        "month_close", "--project", "alpha", "--month", month, "--output-dir", str(tmp_path), stdout=out
    )

    prefix = tmp_path / f"alpha-{month}"
    lines = out.getvalue().splitlines()
    assert lines[:3] == [
        f"alpha, {month}:",
        f"  tie-out: tied out ({prefix}-tie-out.txt)",
        "  usd: billed 3000, given back 500, recognised 2500, deferred 0, prepaid credits 0 at the month's end",
    ]
    assert (
        lines[3] == f"  revenue: {prefix}-revenue.csv; journal: 6 line(s), {prefix}-journal.csv and .parquet"
    )
    assert lines[-1] == "Closed."
    assert (tmp_path / f"alpha-{month}-tie-out.txt").read_text().splitlines()[-1] == "Tied out."
    revenue = (tmp_path / f"alpha-{month}-revenue.csv").read_text().splitlines()
    assert revenue[1] == f"{month},usd,,,3000,500,2500,0,2500,2500,0,0,0,0,0"
    journal = (tmp_path / f"alpha-{month}-journal.csv").read_text().splitlines()
    assert journal[0].startswith("entry,posted_at,effective_at,kind,source")
    # The payment, its refund and Stripe's fee of its charge (2.9% + 30 of 3000), each balanced.
    assert sorted(tuple(line.split(",")[i] for i in (3, 7, 9, 10)) for line in journal[1:]) == [
        ("fee", "1010", "", "1.17"),
        ("fee", "6100", "1.17", ""),
        ("payment", "1010", "30.00", ""),
        ("payment", "2100", "", "30.00"),
        ("refund", "1010", "", "5.00"),
        ("refund", "4900", "5.00", ""),
    ]


def test_beat_keeps_every_projects_schedules_current(
    api, tenant_a, tenant_b, catalog, stripe_sdk, stripe_webhooks
):
    from django.conf import settings

    from billing.tasks import recognition_sync_all

    sdk = stripe_sdk()
    paid_credit_packs(api, tenant_a, sdk)
    stripe_webhooks.deliver()

    assert recognition_sync_all() == 1  # the payment's one line
    assert recognition_sync_all() == 0
    assert list(RevenueSchedule.objects.values_list("project_id", "amount", "kind")) == [
        (tenant_a.project.pk, 3000, "one_off")
    ]
    entry = settings.CELERY_BEAT_SCHEDULE["sync-revenue-schedules"]
    assert (entry["task"], entry["schedule"]) == ("billing.tasks.recognition_sync_all", 600.0)

    # A schedule lost around the services (no row of the mirror changed): the ten-minute run does not see it, the
    # nightly full one writes it again.
    from billing.models import Payment
    from entitlements.models import Purchase

    hour_ago = datetime.now(UTC) - timedelta(hours=1)  # older than the sync's margin
    Payment.objects.update(updated_at=hour_ago)
    Purchase.objects.update(created_at=hour_ago)
    RevenueSchedule.objects.all().delete()
    assert recognition_sync_all() == 0
    assert recognition_sync_all(full=True) == 1
    assert RevenueSchedule.objects.get().amount == 3000
    nightly = settings.CELERY_BEAT_SCHEDULE["repair-revenue-schedules"]
    assert (nightly["task"], nightly["kwargs"]) == ("billing.tasks.recognition_sync_all", {"full": True})
