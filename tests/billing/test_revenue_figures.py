"""Revenue figures kept as the events arrive (billing.models.revenue): a paid payment, a refund and a subscription
journal what they count once, in the transaction that changes them; a duplicate event journals nothing; the
fold moves the journal into the totals without changing any figure; a window's part-days are read from the rows;
the repair counts rows written around the services, once."""

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from billing.models import Figure, Payment, RevenueChange, RevenueTotal, Subscription
from billing.services.refunds import payment_refunds_sync
from billing.services.revenue_figures import revenue_figures_repair, revenue_fold
from tests.billing.payment_factories import CustomerFactory, PaymentFactory, paid_credit_packs


def _journal(project):
    return sorted(
        RevenueChange.objects.filter(project=project).values_list("figure", "currency", "amount", "day")
    )


def _totals(project):
    return sorted(
        RevenueTotal.objects.filter(project=project).values_list("figure", "currency", "amount", "day")
    )


def _revenue(api, tenant, **query):
    body = api.get("/api/v1/metrics/revenue", key=tenant.key, json_body=query).json()
    return {"data": body["data"], "mrr": body["mrr"]}


def test_a_paid_payment_and_its_refund_are_journaled_once_and_folded(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk, "pm_card_visa")
    today = timezone.now().astimezone(UTC).date()
    assert _journal(tenant_a.project) == [("revenue", "usd", 3000, today)]
    assert (
        api.post(f"/api/v1/payments/{paid['id']}/refund", {"amount": 1200}, key=tenant_a.key).status_code
        == 200
    )
    stripe_webhooks.deliver()
    # The settle sweep's read of Stripe applies the payment's refunds again: nothing counted twice.
    payment_refunds_sync(payment=Payment.objects.get(pk=paid["id"]))
    journal = [("refunds", "usd", 1200, today), ("revenue", "usd", 3000, today)]
    assert _journal(tenant_a.project) == journal
    before = _revenue(api, tenant_a)
    assert (before["data"][0]["revenue"], before["data"][0]["refunds"]) == (3000, 1200)

    assert revenue_fold() == 2
    assert _journal(tenant_a.project) == []
    assert _totals(tenant_a.project) == journal
    assert _revenue(api, tenant_a) == before
    assert revenue_fold() == 0
    assert revenue_figures_repair(project_id=tenant_a.project.pk) == 0


def test_a_subscription_counts_its_mrr_while_live_and_takes_it_back_when_cancelled(api, tenant_a, catalog):
    subscription = Subscription.objects.create(
        project=tenant_a.project,
        customer=CustomerFactory(project=tenant_a.project),
        price=catalog.pro_monthly,
        product=catalog.pro,
        quantity=2,
        status="active",
        stripe_subscription_id="sub_figures",
    )
    # Created around the mirror: nothing counted until the repair.
    assert _revenue(api, tenant_a)["mrr"] == {}
    assert revenue_figures_repair(project_id=tenant_a.project.pk) == 1
    assert revenue_figures_repair(project_id=tenant_a.project.pk) == 0
    assert _revenue(api, tenant_a)["mrr"] == {"usd": 6000}
    today = timezone.now().astimezone(UTC).date()
    assert _journal(tenant_a.project) == [("active", "", 1, today), ("mrr", "usd", 6000_000000, today)]

    Subscription.objects.filter(pk=subscription.pk).update(status="canceled")
    assert revenue_figures_repair(project_id=tenant_a.project.pk) == 1
    assert _revenue(api, tenant_a)["mrr"] == {}
    assert _journal(tenant_a.project) == [
        ("active", "", -1, today),
        ("active", "", 1, today),
        ("mrr", "usd", -6000_000000, today),
        ("mrr", "usd", 6000_000000, today),
    ]
    assert Subscription.objects.values_list("mrr_counted", "mrr_currency").get(pk=subscription.pk) == (0, "")


def test_a_window_reads_whole_days_from_the_figures_and_its_part_days_from_the_rows(api, tenant_a):
    day = datetime(2026, 3, 10, tzinfo=UTC)
    for hours, amount in ((-0.5, 1), (0.5, 10), (12, 100), (23.5, 1000), (24.5, 10000), (36, 100000)):
        PaymentFactory(
            project=tenant_a.project,
            amount=amount,
            status="succeeded",
            succeeded_at=day + timedelta(hours=hours),
        )
    assert revenue_figures_repair(project_id=tenant_a.project.pk) == 6
    revenue_fold()
    # 01:00 on the 10th to 01:00 on the 12th: the 10th's first hour out, the 11th whole, the 12th's first hour in.
    body = _revenue(
        api, tenant_a, **{"from": "2026-03-10T01:00:00Z", "to": "2026-03-12T01:00:00Z", "interval": "day"}
    )
    assert [(row["period_start"], row["revenue"]) for row in body["data"]] == [
        ("2026-03-10", 1100),
        ("2026-03-11", 110000),
    ]
    # Within one day: rows only.
    body = _revenue(api, tenant_a, **{"from": "2026-03-10T00:10:00Z", "to": "2026-03-10T12:00:01Z"})
    assert [(row["period_start"], row["revenue"]) for row in body["data"]] == [("2026-03-01", 110)]
    # Whole days only, by the month.
    body = _revenue(api, tenant_a, **{"from": "2026-03-01", "to": "2026-04-01"})
    assert [(row["period_start"], row["revenue"]) for row in body["data"]] == [("2026-03-01", 111111)]


def test_the_repair_counts_a_row_written_around_the_services_once(tenant_a):
    payment = PaymentFactory(project=tenant_a.project, amount=700, status="pending")
    assert revenue_figures_repair(project_id=tenant_a.project.pk) == 0
    succeeded = datetime(2026, 5, 1, 23, 59, tzinfo=UTC)
    Payment.objects.filter(pk=payment.pk).update(status="succeeded", succeeded_at=succeeded)
    assert revenue_figures_repair(project_id=tenant_a.project.pk) == 1
    assert revenue_figures_repair(project_id=tenant_a.project.pk) == 0
    assert _journal(tenant_a.project) == [("revenue", "usd", 700, date(2026, 5, 1))]
    # Its day moved (a correction): taken back from the old day, counted on the new one.
    Payment.objects.filter(pk=payment.pk).update(succeeded_at=succeeded + timedelta(minutes=2))
    assert revenue_figures_repair(project_id=tenant_a.project.pk) == 1
    assert _journal(tenant_a.project) == [
        ("revenue", "usd", -700, date(2026, 5, 1)),
        ("revenue", "usd", 700, date(2026, 5, 1)),
        ("revenue", "usd", 700, date(2026, 5, 2)),
    ]
    revenue_fold()
    # Changes that cancel out within a fold leave no total.
    assert _totals(tenant_a.project) == [("revenue", "usd", 700, date(2026, 5, 2))]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_folds_running_at_once_take_each_change_once(tenant_a):
    RevenueChange.objects.bulk_create(
        RevenueChange(
            project=tenant_a.project,
            figure=Figure.REVENUE,
            currency="usd",
            day=date(2026, 1, 1 + n % 28),
            amount=n,
        )
        for n in range(1, 4001)
    )
    barrier = threading.Barrier(4)
    folded: list[int] = []

    def fold() -> None:
        barrier.wait()
        try:
            while moved := revenue_fold(limit=150):
                folded.append(moved)
        finally:
            connection.close()

    threads = [threading.Thread(target=fold) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(folded) == 4000
    assert RevenueChange.objects.count() == 0
    assert sum(RevenueTotal.objects.values_list("amount", flat=True)) == 4000 * 4001 // 2
    assert RevenueTotal.objects.count() == 28
