"""Subscription and revenue metrics per project, for the project key and for operators' platform key."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Payment, Refund, Subscription
from billing.services.revenue_figures import revenue_figures_repair
from tests.billing.payment_factories import CustomerFactory, PaymentFactory


@pytest.fixture
def book(tenant_a, catalog):
    """Three subscriptions and some payments and refunds of project A."""
    yearly = catalog.pro_monthly.__class__.objects.create(
        project=tenant_a.project,
        product=catalog.pro,
        key="pro-yearly",
        currency="usd",
        unit_amount=30000,
        type="recurring",
        interval="year",
        stripe_price_id="price_yearly",
    )
    for n, (status, price, quantity) in enumerate(
        [
            ("active", catalog.pro_monthly, 2),
            ("active", yearly, 1),
            ("trialing", catalog.pro_monthly, 1),
            ("canceled", catalog.pro_monthly, 1),
            ("past_due", catalog.pro_monthly_eur, 1),
        ]
    ):
        Subscription.objects.create(
            project=tenant_a.project,
            customer=CustomerFactory(project=tenant_a.project),
            price=price,
            product=price.product,
            quantity=quantity,
            status=status,
            stripe_subscription_id=f"sub_m{n}",
        )
    now = timezone.now()
    paid = PaymentFactory(project=tenant_a.project, amount=5000, status="succeeded", succeeded_at=now)
    PaymentFactory(
        project=tenant_a.project,
        amount=3000,
        status="partially_refunded",
        amount_refunded=1000,
        succeeded_at=now,
    )
    PaymentFactory(
        project=tenant_a.project, amount=2500, status="succeeded", succeeded_at=now - timedelta(days=400)
    )
    PaymentFactory(project=tenant_a.project, amount=999, status="pending")
    # Counted as Stripe counts them in amount_refunded: succeeded and pending; not a failed one, nor one whose
    # answer was lost and that Stripe may never have made.
    for amount, status, stripe_id in (
        (1000, "succeeded", "re_m1"),
        (200, "pending", "re_m2"),
        (300, "failed", "re_m3"),
        (400, "unknown", ""),
    ):
        Refund.objects.create(
            project=tenant_a.project,
            payment=paid,
            amount=amount,
            currency="usd",
            status=status,
            stripe_refund_id=stripe_id,
        )
    # Written directly, around the billing services, as an import would: counted by the repair the nightly beat
    # runs (its own tests are in tests/billing/test_revenue_figures.py).
    assert revenue_figures_repair(project_id=tenant_a.project.pk) == 8
    return yearly


def test_subscription_counts_by_status_and_product(api, tenant_a, tenant_b, book):
    body = api.get("/api/v1/metrics/subscriptions", key=tenant_a.key).json()
    assert body["total"] == 5
    assert body["by_status"] == {"active": 2, "trialing": 1, "canceled": 1, "past_due": 1}
    assert body["by_product"] == {"pro": {"active": 2, "trialing": 1, "canceled": 1, "past_due": 1}}
    assert api.get("/api/v1/metrics/subscriptions", key=tenant_b.key).json()["total"] == 0


def test_revenue_refunds_and_mrr(api, tenant_a, book):
    body = api.get("/api/v1/metrics/revenue", key=tenant_a.key).json()
    this_month = timezone.now().date().replace(day=1).isoformat()
    assert body["data"] == [
        {"period_start": this_month, "currency": "usd", "revenue": 8000, "refunds": 1200, "net": 6800}
    ]
    # MRR: 2 × 3000 (monthly) + 30000 / 12 (yearly) in usd; the past_due eur subscription still counts; trials do not.
    assert body["mrr"] == {"eur": 2800, "usd": 8500}


def test_revenue_by_day_in_a_window(api, tenant_a, book):
    start = (timezone.now() - timedelta(days=401)).date().isoformat()
    end = (timezone.now() - timedelta(days=399)).date().isoformat()
    body = api.get(
        "/api/v1/metrics/revenue", key=tenant_a.key, json_body={"from": start, "to": end, "interval": "day"}
    ).json()
    assert [(row["revenue"], row["currency"]) for row in body["data"]] == [(2500, "usd")]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"interval": "year"}, "interval"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "from"),
    ],
)
def test_bad_metrics_queries_are_400(api, tenant_a, query, param):
    response = api.get("/api/v1/metrics/revenue", key=tenant_a.key, json_body=query)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_platform_key_reads_any_projects_metrics(api, tenant_a, platform_key, book):
    assert (
        api.get(f"/api/v1/projects/{tenant_a.project.slug}/metrics/subscriptions", key=platform_key).json()[
            "total"
        ]
        == 5
    )
    assert (
        api.get(f"/api/v1/projects/{tenant_a.project.pk}/metrics/revenue", key=platform_key).json()["mrr"][
            "usd"
        ]
        == 8500
    )
    assert (
        api.get(f"/api/v1/projects/{tenant_a.project.pk}/metrics/revenue", key=tenant_a.key).status_code
        == 403
    )
    assert api.get("/api/v1/metrics/revenue", key=platform_key).status_code == 403
    assert api.get("/api/v1/projects/nope/metrics/revenue", key=platform_key).status_code == 404
    assert Payment.objects.count() == 4


def test_a_window_with_an_offset_postgresql_cannot_hold_is_read_in_utc(api, tenant_a, book):
    """ISO 8601 allows offsets up to ±23:59, PostgreSQL ±15:59 (the schema fuzz found a 500 there)."""
    query = {"from": "2026-01-01T00:00:00-19:58", "to": "2026-03-01T00:00:00+23:00"}
    response = api.get("/api/v1/metrics/revenue", key=tenant_a.key, json_body=query)
    assert response.status_code == 200, response.content


def test_a_time_that_leaves_the_calendar_in_utc_is_400(api, tenant_a):
    query = {"from": "0001-01-01T00:00:00+05:00"}
    response = api.get("/api/v1/metrics/revenue", key=tenant_a.key, json_body=query)
    assert (response.status_code, response.json()["error"]["param"]) == (400, "from")
