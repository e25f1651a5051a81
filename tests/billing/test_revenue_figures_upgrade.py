"""The upgrade that introduced the revenue figures (billing 0028) counts what a database already holds: after it,
the repair finds nothing to count again, the figures equal what the rows imply, and a subscription cancelled
before the upgrade counts from the day it started billing to the day it was cancelled."""

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing.models import Payment, Refund, RevenueChange, RevenueTotal, Subscription
from billing.services.revenue_figures import revenue_figures_repair
from tests.billing.payment_factories import PaymentFactory, SubscriptionFactory


def _migrate(target: str | None = None) -> None:
    """Billing's schema at `target`, or at its newest migration (what every other test runs on)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    if target is None:
        (target,) = (name for app, name in executor.loader.graph.leaf_nodes() if app == "billing")
    executor.migrate([("billing", target)])


@pytest.fixture
def schema_restored():
    """Whatever the test does, the next tests find billing's newest schema."""
    yield
    _migrate()


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_counts_the_rows_it_finds(api, tenant_a, catalog, schema_restored):
    project = tenant_a.project
    live = SubscriptionFactory(project=project, price=catalog.pro_monthly, quantity=2, status="active")
    trial_ended = SubscriptionFactory(project=project, price=catalog.pro_monthly, status="past_due")
    cancelled = SubscriptionFactory(project=project, price=catalog.pro_monthly, status="canceled")
    never = SubscriptionFactory(project=project, price=catalog.pro_monthly, status="incomplete_expired")
    Subscription.objects.filter(pk=live.pk).update(created_at=datetime(2026, 1, 10, 9, tzinfo=UTC))
    Subscription.objects.filter(pk=trial_ended.pk).update(
        created_at=datetime(2026, 2, 1, tzinfo=UTC), trial_end=datetime(2026, 2, 15, 23, tzinfo=UTC)
    )
    Subscription.objects.filter(pk=cancelled.pk).update(
        created_at=datetime(2026, 3, 1, tzinfo=UTC), canceled_at=datetime(2026, 4, 2, tzinfo=UTC)
    )
    paid = PaymentFactory(
        project=project,
        amount=5000,
        status="succeeded",
        succeeded_at=datetime(2026, 3, 3, 23, 30, tzinfo=UTC),
    )
    PaymentFactory(project=project, amount=999, status="pending")
    Refund.objects.create(
        project=project,
        payment=paid,
        amount=1200,
        currency="usd",
        status="succeeded",
        stripe_refund_id="re_up",
    )
    Refund.objects.create(project=project, payment=paid, amount=300, currency="usd", status="unknown")
    # As the database was before the figures: nothing recorded, nothing counted.
    _migrate("0027_revenue_figures")
    Payment.objects.update(revenue_counted=0, revenue_day=None)
    Refund.objects.update(revenue_counted=0, revenue_day=None)
    Subscription.objects.update(mrr_counted=0, mrr_currency="")
    RevenueChange.objects.all().delete()
    RevenueTotal.objects.all().delete()

    _migrate()  # the upgrade (0028) and every migration after it: the schema the next tests run on

    refunded_on = Refund.objects.get(stripe_refund_id="re_up").created_at.astimezone(UTC).date()
    assert sorted(RevenueTotal.objects.values_list("figure", "day", "amount")) == sorted(
        [
            ("mrr", date(2026, 1, 10), 6000_000000),
            ("mrr", date(2026, 2, 15), 3000_000000),
            ("mrr", date(2026, 3, 1), 3000_000000),
            ("mrr", date(2026, 4, 2), -3000_000000),
            ("active", date(2026, 1, 10), 1),
            ("active", date(2026, 2, 15), 1),
            ("active", date(2026, 3, 1), 1),
            ("active", date(2026, 4, 2), -1),
            ("revenue", date(2026, 3, 3), 5000),
            ("refunds", refunded_on, 1200),
        ]
    )
    assert Subscription.objects.values_list("mrr_counted", flat=True).get(pk=never.pk) == 0
    assert revenue_figures_repair(project_id=project.pk) == 0
    body = api.get(
        "/api/v1/metrics/revenue", key=tenant_a.key, json_body={"from": "2026-03-01", "to": "2026-04-01"}
    ).json()
    assert body["mrr"] == {"usd": 9000}
    assert [(row["period_start"], row["revenue"]) for row in body["data"]] == [("2026-03-01", 5000)]
