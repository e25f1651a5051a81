"""Re-rating a product's draft (#52 point 2: `GET /products/{key}/draft/rerating`, `billing.rerating`) over a
project of `BENCH_RERATING_SUBSCRIPTIONS` subscriptions (default 10,000) holding `BENCH_RERATING_EVENTS` usage
events (default 5,000,000), as a ratio to one of FEW subscriptions measured in the same run; the issue's target is
60 s at 10,000 subscriptions and 5 M events. Needs PostgreSQL (the events are written by `INSERT … SELECT
generate_series`).

Each subscription holds `pro` twice — a licensed monthly price (30.00) and a graduated metered one on `api_calls`
(the first 100 calls a month free, then 0.02) — and has four paid monthly invoices: the three closed periods the
re-rating reads and the current one. Each invoice bills its period's licence in advance and the period before's
usage in arrears, as Stripe's do; the usage is the events' (spread evenly: each customer's period holds the same
number), and each period's usage counter says so. The draft reprices both prices and lowers `api_calls` below what
every customer uses. Timed: the re-rating of 3 periods (what the API computes before it lists the first `limit`)
and the admin's CSV of every subscriber, ROUNDS times each (the median). Rows are written in bulk, never through
the API, and deleted at the end.
"""

import gc
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

SUBSCRIPTIONS = int(os.environ.get("BENCH_RERATING_SUBSCRIPTIONS", "10000"))
EVENTS = int(os.environ.get("BENCH_RERATING_EVENTS", "5000000"))
FEW = 100
PERIODS = 4  # three closed, the current one
ROUNDS = 3
TARGET_SECONDS = 60.0
MONTH = timedelta(days=30)


def _seed(project: Any, count: int, events: int, now: datetime) -> Any:
    from django.db import connection, transaction

    from bench.scale_seed import USAGE_CHUNK, _insert_select
    from bench.setup import subscribers_seed
    from billing.models import Invoice, SubscriptionItem
    from catalog.models import Feature, Price, Product, ProductDraft, ProductFeature
    from catalog.services.versions import product_version_publish
    from entitlements.models import UsageCounter, UsageEvent

    calls = Feature.objects.create(project=project, key="api_calls", name="API calls", type="metered")
    product = Product.objects.create(project=project, key="pro", name="Pro")
    ProductFeature.objects.create(product=product, feature=calls, value=200)
    product_version_publish(product, first=True)
    licensed = Price.objects.create(
        project=project,
        product=product,
        key="pro-monthly",
        currency="usd",
        unit_amount=3000,
        type=Price.Type.RECURRING,
        interval=Price.Interval.MONTH,
        stripe_price_id=f"price_{project.slug}_licensed",
    )
    metered = Price.objects.create(
        project=project,
        product=product,
        key="pro-calls",
        currency="usd",
        billing_scheme=Price.BillingScheme.TIERED,
        tiers_mode=Price.TiersMode.GRADUATED,
        tiers=[
            {"up_to": 100, "unit_amount": 0, "flat_amount": None},
            {"up_to": "inf", "unit_amount": 2, "flat_amount": None},
        ],
        type=Price.Type.RECURRING,
        interval=Price.Interval.MONTH,
        usage_type=Price.UsageType.METERED,
        stripe_price_id=f"price_{project.slug}_metered",
    )
    subscriptions = subscribers_seed(project, count, licensed)
    items = []
    for n, subscription in enumerate(subscriptions):
        for position, (price, quantity) in enumerate(((licensed, 1), (metered, None))):
            items.append(
                SubscriptionItem(
                    project=project,
                    subscription=subscription,
                    price=price,
                    product=product,
                    quantity=quantity,
                    usage_type=price.usage_type or Price.UsageType.LICENSED,
                    stripe_item_id=f"si_{project.slug}_{n}_{position}",
                    stripe_price_id=price.stripe_price_id,
                    position=position,
                )
            )
    SubscriptionItem.objects.bulk_create(items, batch_size=5000)

    # Period k (0: the oldest) runs [first + k months, first + k + 1 months); the last one is current.
    first = now - PERIODS * MONTH + timedelta(days=1)
    starts = [first + k * MONTH for k in range(PERIODS)]
    per_period = events // (count * PERIODS)  # each customer's events in each period
    tiers = metered.tiers

    def usage_amount(quantity: int) -> int:
        from catalog.pricing import tiers_amount

        return tiers_amount(tiers_mode=metered.tiers_mode, tiers=tiers, quantity=quantity)

    invoices, counters = [], []
    for n, subscription in enumerate(subscriptions):
        for k, start in enumerate(starts):
            lines = [
                {
                    "stripe_line_id": f"il_{project.slug}_{n}_{k}_l",
                    "type": "subscription_item",
                    "description": "1 × Pro",
                    "amount": 3000,
                    "currency": "usd",
                    "quantity": 1,
                    "proration": False,
                    "stripe_price_id": licensed.stripe_price_id,
                    "period_start": int(start.timestamp()),
                    "period_end": int((start + MONTH).timestamp()),
                }
            ]
            if k:
                lines.append(
                    {
                        "stripe_line_id": f"il_{project.slug}_{n}_{k}_m",
                        "type": "subscription_item",
                        "description": "Pro calls",
                        "amount": usage_amount(per_period),
                        "currency": "usd",
                        "quantity": per_period,
                        "proration": False,
                        "stripe_price_id": metered.stripe_price_id,
                        "period_start": int(starts[k - 1].timestamp()),
                        "period_end": int(start.timestamp()),
                    }
                )
            invoices.append(
                Invoice(
                    project=project,
                    customer_id=subscription.customer_id,
                    subscription=subscription,
                    stripe_invoice_id=f"in_{project.slug}_{n}_{k}",
                    stripe_subscription_id=subscription.stripe_subscription_id,
                    status="paid",
                    billing_reason="subscription_cycle" if k else "subscription_create",
                    currency="usd",
                    subtotal=sum(line["amount"] for line in lines),
                    total=sum(line["amount"] for line in lines),
                    period_start=start,
                    period_end=start + MONTH,
                    lines=lines,
                )
            )
            counters.append(
                UsageCounter(
                    project=project,
                    customer_id=subscription.customer_id,
                    feature=calls,
                    period_start=start,
                    period_end=start + MONTH,
                    used=per_period,
                )
            )
    Invoice.objects.bulk_create(invoices, batch_size=5000)
    UsageCounter.objects.bulk_create(counters, batch_size=5000)
    ids = [subscription.customer_id for subscription in subscriptions]
    total = per_period * count * PERIODS
    for offset in range(0, total, USAGE_CHUNK):
        size = min(USAGE_CHUNK, total - offset)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                if cursor.fetchone()[0]:
                    cursor.execute("SET LOCAL session_replication_role = replica")
            # Event m: customer m % count, period (m // count) % PERIODS, an hour into it plus m seconds' worth.
            _insert_select(
                UsageEvent,
                size,
                {
                    "id": "'uev_' || substr(md5(%(project)s || 'uev' || (n + %(first)s)), 1, 24)",
                    "project_id": "%(project)s",
                    "customer_id": "(%(customers)s::text[])[1 + ((n + %(first)s) %% %(many)s)]",
                    "feature_id": "%(feature)s",
                    "event_id": "'rerate-' || (n + %(first)s)",
                    "kind": "'usage'",
                    "quantity": "1",
                    "timestamp": "%(start)s::timestamptz + make_interval(days => 30 * (((n + %(first)s) / "
                    "%(many)s) %% %(periods)s), secs => 3600 + ((n + %(first)s) %% 86400))",
                    "period_start": "%(start)s::timestamptz + make_interval(days => 30 * (((n + %(first)s) / "
                    "%(many)s) %% %(periods)s))",
                    "properties": "'{}'::jsonb",
                    "meter_status": "'reported'",
                },
                {
                    "project": project.pk,
                    "feature": calls.pk,
                    "customers": ids,
                    "many": count,
                    "first": offset,
                    "start": first,
                    "periods": PERIODS,
                },
            )
    draft = ProductDraft.objects.create(
        product=product,
        based_on=1,
        features={"api_calls": 100},
        prices={
            "pro-monthly": {"unit_amount": 3500},
            "pro-calls": {
                "tiers": [
                    {"up_to": 50, "unit_amount": 0, "flat_amount": None},
                    {"up_to": "inf", "unit_amount": 3, "flat_amount": None},
                ]
            },
        },
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return draft


def _drop(project: Any) -> None:
    from django.db import connection

    from billing.models import Invoice, Subscription, SubscriptionItem
    from catalog.models import Feature, Price, Product, ProductDraft, ProductFeature, ProductVersion
    from customers.models import Customer
    from entitlements.models import UsageCounter, UsageEvent
    from projects.models import Project

    for model in (UsageEvent, UsageCounter, Invoice, SubscriptionItem, Subscription, Customer, Price):
        model.objects.filter(project=project)._raw_delete(connection.alias)  # type: ignore[attr-defined]
    for model in (ProductDraft, ProductFeature, ProductVersion):
        model.objects.filter(product__project=project).delete()
    Product.objects.filter(project=project).delete()
    Feature.objects.filter(project=project).delete()
    Project.objects.filter(pk=project.pk).delete()


def _timed(call: Any) -> tuple[float, Any]:
    """Seconds of one call, the garbage of the calls before collected first (the other side's answers are large)."""
    gc.collect()
    started = time.perf_counter()
    answer = call()
    return time.perf_counter() - started, answer


def run() -> None:
    from django.db import connection

    from bench.setup import report
    from billing.admin.rerating import rerating_csv
    from billing.rerating import draft_rerating
    from core.actors import Actor
    from core.ids import random_token
    from projects.services import projects as services

    if connection.vendor != "postgresql":
        print("\nRe-rating a draft: skipped (needs DATABASE_URL=postgres://…: the events are seeded by SQL).")
        return
    now = datetime.now(UTC)
    drafts = {}
    projects = []
    try:
        for size, events in ((FEW, EVENTS * FEW // SUBSCRIPTIONS), (SUBSCRIPTIONS, EVENTS)):
            slug = f"bench-rerate-{random_token(8).lower()}"
            project, _, _ = services.project_create(actor=Actor.system("bench"), slug=slug, name=slug)
            projects.append(project)
            seeding = time.perf_counter()
            drafts[size] = _seed(project, size, events, now)
            print(
                f"seeded {size} subscriptions and {events} usage events in {time.perf_counter() - seeding:.1f} s"
            )
        rerated: dict[int, list[float]] = {FEW: [], SUBSCRIPTIONS: []}
        csv_seconds: dict[int, list[float]] = {FEW: [], SUBSCRIPTIONS: []}
        answers: dict[int, Any] = {}
        for draft in drafts.values():  # warm: the first call imports and plans what every later one reuses
            draft_rerating(draft=draft, periods=3, now=now)
        for _ in range(ROUNDS):  # interleaved: the two sizes share the machine's state
            for size, draft in drafts.items():
                seconds, answers[size] = _timed(
                    lambda draft=draft: draft_rerating(draft=draft, periods=3, now=now)
                )
                rerated[size].append(seconds)
                csv_seconds[size].append(_timed(lambda size=size: rerating_csv(answers[size]))[0])
        big = answers[SUBSCRIPTIONS]
        (total,) = big["totals"]
        assert total["subscriptions"] == SUBSCRIPTIONS, total
        assert all(len(row["periods"]) == 3 for row in big["rows"]), "every subscriber re-rated on 3 periods"
        print(
            f"{SUBSCRIPTIONS} subscriptions, 3 periods: today {total['today']}, draft {total['draft']}, "
            f"difference {total['difference']} (minor units, usd)"
        )
        base = statistics.median(rerated[FEW])
        median = statistics.median(rerated[SUBSCRIPTIONS])
        report(
            f"Re-rating a draft, milliseconds (median of {ROUNDS}); target ≤ {TARGET_SECONDS:.0f} s at {SUBSCRIPTIONS} "
            f"subscriptions and {EVENTS} usage events",
            [
                (f"re-rating, {FEW} subscriptions (baseline)", base * 1000, "ms"),
                (f"re-rating, {SUBSCRIPTIONS} subscriptions", median * 1000, "ms"),
                (
                    f"CSV of every subscriber, {SUBSCRIPTIONS}",
                    statistics.median(csv_seconds[SUBSCRIPTIONS]) * 1000,
                    "ms",
                ),
            ],
            base * 1000,
        )
        verdict = "meets" if median <= TARGET_SECONDS else "misses"
        print(f"{SUBSCRIPTIONS} subscriptions: {median:.1f} s, {verdict} the {TARGET_SECONDS:.0f} s target")
    finally:
        for project in projects:
            _drop(project)
