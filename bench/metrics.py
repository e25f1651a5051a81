"""The revenue metrics (`GET /api/v1/metrics/revenue`: twelve months of revenue and refunds, and MRR) of a project
with `BENCH_METRICS_SUBSCRIPTIONS` live subscriptions (default 20,000) and as many paid payments spread over the
year, one in ten refunded, as a ratio to a project with FEW of each, measured in the same run.

Both projects' rows are written in bulk as the billing services leave them: each row with what it counts, and
one journal change per row (billing.models.revenue), then folded (`revenue_fold`, timed) as the beat folds it.
The metrics read the folded figures plus the rows of the last part-day, so their cost does not follow the
number of payments or subscriptions. The back office's dashboard (`/admin/dashboard/`, a superuser: every
project's figures, twelve months of charts) is measured with two small projects (the baseline) and with the
small one and the large one: as many projects, and 200 times the rows. The rows are deleted at the end.
"""

import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.setup import call_times, p99

ROUNDS = 5
CALLS = 40
SUBSCRIPTIONS = int(os.environ.get("BENCH_METRICS_SUBSCRIPTIONS", "20000"))
FEW = 100
# The dashboard reads every project's figures and renders six charts: fewer calls per round.
DASHBOARD_CALLS = 8


def _times(call: Callable[[], object], calls: int = CALLS) -> list[float]:
    return call_times(call, rounds=ROUNDS, calls=calls)


def run() -> None:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    from bench.setup import report
    from billing.models import Payment, Refund, RevenueChange, RevenueTotal, Subscription
    from billing.services.revenue_figures import revenue_fold
    from catalog.models import Price, Product
    from core.actors import Actor
    from core.ids import random_token
    from customers.models import Customer
    from projects.models import Project
    from projects.services import projects as services

    now = datetime.now(UTC)

    def seeded(size: int) -> tuple[Project, str]:
        slug = f"bench-metrics-{random_token(8).lower()}"
        project, _, secret = services.project_create(actor=Actor.system("bench"), slug=slug, name=slug)
        product = Product.objects.create(project=project, key="pro", name="Pro")
        price = Price.objects.create(
            project=project,
            product=product,
            key="pro-monthly",
            currency="usd",
            unit_amount=3000,
            type=Price.Type.RECURRING,
            interval=Price.Interval.MONTH,
            stripe_price_id=f"price_{slug}",
        )
        revenue_rows_seed(project=project, product=product, price=price, first=0, count=size, now=now)
        return project, secret

    def dropped(project: Project) -> None:
        for model in (RevenueTotal, RevenueChange, Refund, Payment, Subscription, Customer, Price, Product):
            model.objects.filter(project=project)._raw_delete(connection.alias)  # type: ignore[attr-defined]
        Project.objects.filter(pk=project.pk).delete()

    def analyze() -> None:
        """Fresh statistics for the planner, before each measurement (both sizes alike)."""
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for table in (
                    "billing_payment",
                    "billing_refund",
                    "billing_subscription",
                    "billing_revenuetotal",
                ):
                    cursor.execute(f"ANALYZE {table}")

    few, few_secret = seeded(FEW)
    # The dashboard's baseline has as many projects as its large run: a second small one, dropped after.
    other, _ = seeded(FEW)
    operator = User.objects.create_superuser(
        f"bench-metrics-{random_token(8).lower()}", password=random_token(20)
    )
    back_office = Client()
    back_office.force_login(operator)

    def dashboard() -> object:
        response = back_office.get("/admin/dashboard/")
        assert response.status_code == 200, response.content[:300]
        return response

    while revenue_fold():
        pass
    analyze()
    dashboard_few = _times(dashboard, DASHBOARD_CALLS)
    dropped(other)
    started = time.perf_counter()
    many, many_secret = seeded(SUBSCRIPTIONS)
    seeding = time.perf_counter() - started
    started = time.perf_counter()
    folded = 0
    while moved := revenue_fold():
        folded += moved
    folding = time.perf_counter() - started
    analyze()
    client = Client()

    def metrics(secret: str, expected_mrr: int) -> Callable[[], object]:
        headers = {"Authorization": f"Bearer {secret}"}

        def call() -> object:
            response = client.get("/api/v1/metrics/revenue", headers=headers)
            assert response.status_code == 200, response.content[:300]
            assert response.json()["mrr"] == {"usd": expected_mrr}
            return response

        return call

    try:
        with override_settings(API_RATE_LIMIT_PER_MINUTE=0):
            small = _times(metrics(few_secret, 3000 * FEW))
            large = _times(metrics(many_secret, 3000 * SUBSCRIPTIONS))
        dashboard_many = _times(dashboard, DASHBOARD_CALLS)
    finally:
        operator.delete()
        for project in (few, many):
            dropped(project)

    baseline = statistics.median(small)
    report(
        f"Revenue metrics at {FEW} and {SUBSCRIPTIONS:,} subscriptions and payments (database: {connection.vendor}; "
        f"seeded in {seeding:.0f} s, {folded:,} journal changes folded in {folding:.1f} s) — lower is better",
        [
            (f"{FEW} (baseline), median", baseline, "µs/call"),
            (f"{FEW}, p99", p99(small), "µs/call"),
            (f"{SUBSCRIPTIONS:,}, median", statistics.median(large), "µs/call"),
            (f"{SUBSCRIPTIONS:,}, p99", p99(large), "µs/call"),
        ],
        baseline,
    )
    dashboard_baseline = statistics.median(dashboard_few)
    report(
        f"The back office's dashboard (every project, twelve months): two projects of {FEW} subscriptions and "
        f"payments (baseline), then one of {FEW} and one of {SUBSCRIPTIONS:,} — lower is better",
        [
            (f"{FEW} + {FEW} (baseline), median", dashboard_baseline, "µs/call"),
            (f"{FEW} + {FEW}, p99", p99(dashboard_few), "µs/call"),
            (f"{FEW} + {SUBSCRIPTIONS:,}, median", statistics.median(dashboard_many), "µs/call"),
            (f"{FEW} + {SUBSCRIPTIONS:,}, p99", p99(dashboard_many), "µs/call"),
        ],
        dashboard_baseline,
    )


def revenue_rows_seed(
    *, project: Any, product: Any, price: Any, first: int, count: int, now: datetime
) -> None:
    """`count` customers of `project`, numbered from `first`, each with a live subscription to `price` and a paid
    payment in the year before `now` (one in ten refunded), written in bulk as the billing services leave them:
    each row with what it counts, and one revenue journal change per row, for `revenue_fold` to fold."""
    from billing.models import Figure, Payment, Refund, RevenueChange, Subscription
    from billing.services.revenue_figures import MRR_UNIT
    from core.ids import new_ids
    from customers.models import Customer

    customers = [
        Customer(id=pk, project=project, external_id=f"user-{n}", email=f"user-{n}@example.com")
        for n, pk in enumerate(new_ids("cust", count), start=first)
    ]
    Customer.objects.bulk_create(customers, batch_size=5000)
    changes = []
    subscriptions = []
    for n, (pk, customer) in enumerate(zip(new_ids("subs", count), customers, strict=True), start=first):
        subscriptions.append(
            Subscription(
                id=pk,
                project=project,
                customer=customer,
                price=price,
                product=product,
                status=Subscription.Status.ACTIVE,
                stripe_subscription_id=f"sub_{n}",
                mrr_counted=3000 * MRR_UNIT,
                mrr_currency="usd",
            )
        )
        day = (now - timedelta(days=n % 365)).date()
        changes.append(
            RevenueChange(project=project, figure=Figure.MRR, currency="usd", day=day, amount=3000 * MRR_UNIT)
        )
    Subscription.objects.bulk_create(subscriptions, batch_size=5000)
    payments = []
    refunds = []
    for n, (pk, customer) in enumerate(zip(new_ids("pay", count), customers, strict=True), start=first):
        succeeded = now - timedelta(days=n % 365, minutes=n % 1440)
        payments.append(
            Payment(
                id=pk,
                project=project,
                customer=customer,
                type=Payment.Type.SUBSCRIPTION,
                flow=Payment.Flow.INTENT,
                source=Payment.Source.INVOICE,
                amount=3000,
                currency="usd",
                status=Payment.Status.SUCCEEDED,
                succeeded_at=succeeded,
                revenue_counted=3000,
                revenue_day=succeeded.date(),
                stripe_payment_intent_id=f"pi_{n}",
            )
        )
        changes.append(
            RevenueChange(
                project=project, figure=Figure.REVENUE, currency="usd", day=succeeded.date(), amount=3000
            )
        )
    Payment.objects.bulk_create(payments, batch_size=5000)
    for n, payment in enumerate(payments[::10], start=first):
        made = payment.succeeded_at + timedelta(hours=1)  # type: ignore[operator]
        refunds.append(
            Refund(
                project=project,
                payment=payment,
                amount=1000,
                currency="usd",
                status=Refund.Status.SUCCEEDED,
                stripe_refund_id=f"re_{n}",
                revenue_counted=1000,
                revenue_day=made.date(),
                created_at=made,
            )
        )
        changes.append(
            RevenueChange(
                project=project, figure=Figure.REFUNDS, currency="usd", day=made.date(), amount=1000
            )
        )
    created_at = Refund._meta.get_field("created_at")
    created_at.auto_now_add = False  # type: ignore[attr-defined]  # the instants given (a seed, not a request)
    try:
        Refund.objects.bulk_create(refunds, batch_size=5000)
    finally:
        created_at.auto_now_add = True  # type: ignore[attr-defined]
    RevenueChange.objects.bulk_create(changes, batch_size=5000)
