"""Costs that stay flat as data grows (issue #30, point 6): each operation measured at small and at large data in
one run, on the same production web server, and reported as a throughput ratio and a p99 ratio (large / small)
against the targets: throughput ≥ 0.8× and p99 ≤ 1.5× (reconciliation and usage ingest, per item: ≥ 0.7×).

The operations, and the data each one grows with (small → large; `BENCH_SCALE=full` gives the issue's sizes):

- warm check (`GET /entitlements/check`): its project's customers and usage events (1,000 → 101,000 customers,
  10 → 100,000 events);
- usage ingest (`POST /usage/batch` of BATCH_SIZE events, per event): the usage table (→ 5 million rows);
- reconciliation (`reconcile`, one project against Stripe, per customer): the project's customers, each with a
  subscription at Stripe and its mirror (100 → 5,000);
- cursor page (`GET /customers?limit=20`): the first page of the small list, then the page after the
  100,000th newest customer of the large one (core.pagination);
- the back office's customer list (`/admin/customers/customer/`, every project): the customers table
  (→ 126,000 rows);
- revenue metrics (`GET /metrics/revenue`) and the dashboard (`/admin/dashboard/`, every project): the
  project's live subscriptions and payments (100 → 20,000).

The projects are made once and grow in place between the two phases (small data seeded, every operation
measured; the large data added, every operation measured again), so the dashboard reads as many projects in both.
Rows are written in bulk (`INSERT … SELECT generate_series` for customers and usage events, `bulk_create`
elsewhere), never through the API; Stripe is the in-process emulator (the reconciliation's reads are the only
Stripe calls), and the mirrors the reconciliation compares are made by one untimed `reconcile --fix` run per phase.
HTTP operations run on gunicorn with `config.settings.production` (3 sync workers, JSON request logs into
var/bench-scale-production.log), driven by bench.entitlements' closed-loop client (16 connections).

Sizes: `BENCH_SCALE=full` (the issue's), else small ones the test suite runs; any size alone with
`BENCH_SCALE_<NAME>=small,large` (names in SIZES, e.g. `BENCH_SCALE_RECONCILE=100,1000`), requests per
measurement with `BENCH_SCALE_REQUESTS_<OPERATION>`. Needs PostgreSQL and Redis (`BENCH_SCALE_REDIS_URL`, default
REDIS_URL, flushed); the server listens on `BENCH_SCALE_PORT` (default: a free port). `python -m bench scale`.
"""

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BATCH_SIZE = 1000
CONCURRENCY = 16
WORKERS = 3
PAGE_AFTER = 100_000  # the deep page: after the 100,000th newest customer (or the list's last page)
INGEST_FILLER_CUSTOMERS = 1000

# name → (small, large), for the suite (default) and for the figures (BENCH_SCALE=full).
SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "default": {
        "check_customers": (100, 2_000),
        "check_events": (10, 2_000),
        "ingest_rows": (0, 20_000),
        "reconcile": (5, 20),
        "admin_rows": (0, 4_000),
        "revenue": (20, 500),
    },
    "full": {
        "check_customers": (1_000, 101_000),
        "check_events": (10, 100_000),
        "ingest_rows": (0, 5_000_000),
        "reconcile": (100, 5_000),
        "admin_rows": (0, 126_000),
        "revenue": (100, 20_000),
    },
}
# Requests per measurement (batches for the ingest, runs for the reconciliation), by scale.
REQUESTS: dict[str, dict[str, int]] = {
    "default": {
        "check": 300,
        "ingest": 3,
        "reconcile": 2,
        "page": 200,
        "admin": 40,
        "metrics": 200,
        "dashboard": 30,
    },
    "full": {
        "check": 3000,
        "ingest": 8,
        "reconcile": 2,
        "page": 1500,
        "admin": 200,
        "metrics": 1500,
        "dashboard": 150,
    },
}
OPERATIONS = ("check", "ingest", "reconcile", "page", "admin", "metrics", "dashboard")
LABELS = {
    "check": "warm check",
    "ingest": "usage ingest (per event)",
    "reconcile": "reconciliation (per customer)",
    "page": "cursor page",
    "admin": "admin customer list",
    "metrics": "revenue metrics",
    "dashboard": "dashboard",
}
PER_ITEM = {"ingest", "reconcile"}


def sizes() -> dict[str, tuple[int, int]]:
    scale = "full" if os.environ.get("BENCH_SCALE") == "full" else "default"
    chosen = dict(SIZES[scale])
    for name in chosen:
        raw = os.environ.get(f"BENCH_SCALE_{name.upper()}")
        if raw:
            small, large = (int(part) for part in raw.split(","))
            chosen[name] = (small, large)
    return chosen


def requests() -> dict[str, int]:
    scale = "full" if os.environ.get("BENCH_SCALE") == "full" else "default"
    return {
        name: int(os.environ.get(f"BENCH_SCALE_REQUESTS_{name.upper()}") or count)
        for name, count in REQUESTS[scale].items()
    }


@dataclass
class Measure:
    """One operation at one size: items per second and the p99 of one request (or run), in milliseconds."""

    size: str
    rate: float
    p99_ms: float


@dataclass
class Result:
    operation: str
    small: Measure
    large: Measure

    @property
    def throughput(self) -> float:
        return self.large.rate / self.small.rate

    @property
    def p99(self) -> float:
        return self.large.p99_ms / self.small.p99_ms

    @property
    def floor(self) -> float:
        return 0.7 if self.operation in PER_ITEM else 0.8

    @property
    def passed(self) -> bool:
        return self.throughput >= self.floor and self.p99 <= 1.5


@dataclass
class World:
    """The projects every operation reads, and what they hold so far."""

    check: dict[str, Any]
    ingest: dict[str, Any]
    reconcile: Any
    revenue: dict[str, Any]
    filler: Any
    session: str
    emulator: Any
    stripe: Any
    stripe_price: str
    grown: dict[str, int] = field(default_factory=dict)
    cursor: str = ""
    position: int = 0
    listed: int = 0


# --- seeding ------------------------------------------------------------------------------------------------


def _insert_select(model: Any, count: int, values: dict[str, str], params: dict[str, Any]) -> None:
    """`count` rows of `model` in one `INSERT … SELECT … FROM generate_series(1, count) AS n`: `values` gives the
    SQL of columns (of `n` and `params`); every other column gets its field's default, as the ORM would write it."""
    from django.db import connection

    columns, expressions, args = [], [], dict(params)
    for model_field in model._meta.concrete_fields:
        column = model_field.column
        columns.append(connection.ops.quote_name(column))
        if column in values:
            expressions.append(values[column])
        elif getattr(model_field, "auto_now", False) or getattr(model_field, "auto_now_add", False):
            expressions.append("now()")
        elif model_field.has_default() or not model_field.null:
            default = model_field.get_default()  # "" for a text field without one, as the ORM writes
            args[f"default_{column}"] = model_field.get_db_prep_save(default, connection)
            expressions.append(f"%(default_{column})s")
        else:
            expressions.append("NULL")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
            f"SELECT {', '.join(expressions)} FROM generate_series(1, %(count)s) AS n",
            {**args, "count": count},
        )


def _customers_seed(project: Any, first: int, count: int, prefix: str) -> None:
    """`count` customers of `project` numbered from `first`, a second apart (every tenth tied with the one before,
    as imports make ties)."""
    from customers.models import Customer

    if count <= 0:
        return
    _insert_select(
        Customer,
        count,
        {
            "id": "'cust_' || substr(md5(%(project)s || %(prefix)s || (n + %(first)s)), 1, 24)",
            "project_id": "%(project)s",
            "external_id": "%(prefix)s || (n + %(first)s)",
            "email": "%(prefix)s || (n + %(first)s) || '@example.com'",
            "currency": "CASE WHEN n %% 2 = 0 THEN 'usd' ELSE 'eur' END",
            "created_at": "timestamptz '2025-01-01 00:00:00+00' + make_interval(secs => n + %(first)s "
            "- CASE WHEN (n + %(first)s) %% 10 = 9 THEN 1 ELSE 0 END)",
        },
        {"project": project.pk, "first": first, "prefix": prefix},
    )


def _usage_seed(project: Any, feature: Any, customers: list[str], first: int, count: int) -> None:
    """`count` usage events of `feature` spread over `customers`, in chunks of a million rows."""
    from entitlements.models import UsageEvent

    chunk = 1_000_000
    for start in range(first, first + count, chunk):
        size = min(chunk, first + count - start)
        _insert_select(
            UsageEvent,
            size,
            {
                "id": "'uev_' || substr(md5(%(project)s || 'uev' || (n + %(first)s)), 1, 24)",
                "project_id": "%(project)s",
                "customer_id": "(%(customers)s::text[])[1 + (n %% %(many)s)]",
                "feature_id": "%(feature)s",
                "event_id": "'seed-' || (n + %(first)s)",
                "kind": "'usage'",
                "quantity": "1",
                "timestamp": "now() - make_interval(secs => n %% 86400)",
                "properties": "'{}'::jsonb",
            },
            {
                "project": project.pk,
                "feature": feature.pk,
                "customers": customers,
                "many": len(customers),
                "first": start,
            },
        )


def _vacuum() -> None:
    """The tables as autovacuum leaves them after the seeding's inserts and the fold's deletes (fresh statistics,
    no dead index entries), whether or not the server runs autovacuum."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def _revenue_setup(slug: str) -> dict[str, Any]:
    from catalog.models import Price, Product
    from core.actors import Actor
    from projects.services import projects as project_services

    project, _, secret = project_services.project_create(actor=Actor.system("bench"), slug=slug, name=slug)
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
    return {"project": project, "secret": secret, "product": product, "price": price}


def world_create() -> World:
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client

    from bench.entitlements import _setup as check_setup
    from catalog.models import Price, Product
    from core.actors import Actor
    from core.ids import random_token
    from projects.services import projects as project_services
    from stripe_emulator import Emulator
    from stripe_emulator.sdk import EmulatorHTTPClient, make_client
    from stripe_gateway.client import install_http_client

    tag = random_token(6).lower()
    emulator = Emulator(webhook_mode="manual")
    install_http_client(EmulatorHTTPClient(emulator))
    stripe = make_client(emulator, settings.STRIPE_SECRET_KEY)
    stripe_product = stripe.v1.products.create({"name": "Pro"})
    stripe_price = stripe.v1.prices.create(
        {
            "product": stripe_product.id,
            "currency": "usd",
            "unit_amount": 3000,
            "recurring": {"interval": "month"},
        }
    )
    reconciled, _, _ = project_services.project_create(
        actor=Actor.system("bench"), slug=f"bench-scale-rec-{tag}", name="Bench reconciliation"
    )
    product = Product.objects.create(project=reconciled, key="pro", name="Pro")
    Price.objects.create(
        project=reconciled,
        product=product,
        key="pro-monthly",
        currency="usd",
        unit_amount=3000,
        type=Price.Type.RECURRING,
        interval=Price.Interval.MONTH,
        stripe_price_id=stripe_price.id,
    )
    filler, _, _ = project_services.project_create(
        actor=Actor.system("bench"), slug=f"bench-scale-rows-{tag}", name="Bench rows"
    )
    operator = User.objects.create_superuser(f"bench-scale-{tag}", password=random_token(20))
    browser = Client()
    browser.force_login(operator)
    return World(
        check=check_setup(),
        ingest=check_setup(),
        reconcile=reconciled,
        revenue=_revenue_setup(f"bench-scale-revenue-{tag}"),
        filler=filler,
        session=browser.cookies[settings.SESSION_COOKIE_NAME].value,
        emulator=emulator,
        stripe=stripe,
        stripe_price=stripe_price.id,
    )


def world_grow(world: World, phase: int, target: dict[str, tuple[int, int]]) -> float:
    """Brings every project to its size of `phase` (0: small, 1: large); returns the seconds it took."""
    from billing.services.reconcile import reconcile
    from billing.services.revenue_figures import revenue_fold
    from customers.models import Customer

    started = time.perf_counter()
    grown = world.grown

    def more(name: str) -> tuple[int, int]:
        have, want = grown.get(name, 0), target[name][phase]
        grown[name] = max(have, want)
        return have, max(0, want - have)

    have, count = more("check_customers")
    _customers_seed(world.check["project"], have, count, "user-")
    have, count = more("check_events")
    if count:
        customers = list(
            Customer.objects.filter(project=world.check["project"])
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        _usage_seed(world.check["project"], world.check["calls"], customers, have, count)
    have, count = more("ingest_rows")
    if count:
        if not Customer.objects.filter(
            project=world.ingest["project"], external_id__startswith="filler-"
        ).exists():
            _customers_seed(world.ingest["project"], 0, INGEST_FILLER_CUSTOMERS, "filler-")
        customers = list(
            Customer.objects.filter(
                project=world.ingest["project"], external_id__startswith="filler-"
            ).values_list("pk", flat=True)
        )
        _usage_seed(world.ingest["project"], world.ingest["calls"], customers, have, count)
    have, count = more("revenue")
    if count:
        from bench.metrics import revenue_rows_seed

        revenue_rows_seed(
            project=world.revenue["project"],
            product=world.revenue["product"],
            price=world.revenue["price"],
            first=have,
            count=count,
            now=datetime.now(UTC),
        )
        while revenue_fold():
            pass
    have, count = more("reconcile")
    for n in range(have, have + count):
        customer = Customer.objects.create(project=world.reconcile, external_id=f"user-{n}")
        stripe_customer = world.stripe.v1.customers.create(
            {"email": f"user-{n}@example.com", "metadata": {"tollgate_customer": customer.pk}}
        )
        Customer.objects.filter(pk=customer.pk).update(stripe_customer_id=stripe_customer.id)
        world.stripe.v1.subscriptions.create(
            {
                "customer": stripe_customer.id,
                "items": [{"price": world.stripe_price}],
                "collection_method": "send_invoice",
                "days_until_due": 30,
                "metadata": {"tollgate_customer": customer.pk},
            }
        )
    if count:
        reconcile(project=world.reconcile, fix=True)  # the mirrors, as the webhooks would have left them
    # The admin list's rows: the filler project tops the customers table up to the size asked.
    want = target["admin_rows"][phase]
    total = Customer.objects.count()
    if want > total:
        _customers_seed(world.filler, grown.get("admin_filler", 0), want - total, "row-")
        grown["admin_filler"] = grown.get("admin_filler", 0) + want - total
    grown["admin_rows"] = Customer.objects.count()
    # The cursor of the deep page: after the PAGE_AFTER-th newest customer (or the list's last full page).
    customers = Customer.objects.filter(project=world.check["project"]).order_by("-created_at", "-pk")
    world.listed = customers.count()
    world.position = max(0, min(PAGE_AFTER, world.listed - 21))
    world.cursor = str(customers.values_list("pk", flat=True)[world.position])
    _vacuum()
    return time.perf_counter() - started


# --- measuring ----------------------------------------------------------------------------------------------


def _get(path: str, *, key: str = "", session: str = "") -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if session:
        lines.append(f"Cookie: sessionid={session}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _http(port: int, raw: bytes, total: int, size: str, check: Callable[[bytes], bool]) -> Measure:
    from bench.entitlements import _closed_loop, _pct, _request

    async def measure() -> tuple[float, list[float], list[tuple[int, bytes]]]:
        for _ in range(WORKERS * 2):  # every worker warm (its caches, its connection)
            status, body = await _request(port, raw)
            assert status == 200, body[:300]
        return await _closed_loop(port, lambda i: raw, total, CONCURRENCY)

    rate, latencies, answers = asyncio.run(measure())
    bad = [(status, body[:200]) for status, body in answers if status != 200 or not check(body)]
    assert not bad, bad[:3]
    return Measure(size=size, rate=rate, p99_ms=_pct(latencies, 0.99))


def _ingest(port: int, world: World, batches: int, phase: int, size: str) -> Measure:
    import json

    from bench.entitlements import _pct, _raw, _request

    secret = world.ingest["secret"]

    def batch(name: str) -> bytes:
        events = [
            {"id": f"{name}-{i}", "customer": f"user-{i % 50}", "feature": "api_calls", "quantity": 1}
            for i in range(BATCH_SIZE)
        ]
        return _raw("POST", "/api/v1/usage/batch", secret, json.dumps({"events": events}).encode())

    async def measure() -> list[float]:
        for warm in range(2):  # the customers made, then their snapshots cached (steady state)
            status, body = await _request(port, batch(f"warm-{phase}-{warm}"))
            assert status == 200, body[:300]
        latencies = []
        for number in range(batches):
            raw = batch(f"phase-{phase}-{number}")
            started = time.perf_counter()
            status, body = await _request(port, raw)
            latencies.append(time.perf_counter() - started)
            assert status == 200, body[:300]
            assert json.loads(body) == {"accepted": BATCH_SIZE, "duplicates": 0}, body[:300]
        return latencies

    latencies = asyncio.run(measure())
    return Measure(size=size, rate=BATCH_SIZE * len(latencies) / sum(latencies), p99_ms=_pct(latencies, 0.99))


def _reconcile(world: World, runs: int, customers: int) -> Measure:
    """`runs` reconciliations of the project: customers per second (median run) and the slowest run's time per
    customer as its p99 (per item, as the ingest's)."""
    from billing.services.reconcile import reconcile

    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        run = reconcile(project=world.reconcile)
        seconds.append(time.perf_counter() - started)
        assert (run.status, run.drift_count) == ("completed", 0), (run.status, run.error, run.drift_count)
    return Measure(
        size=f"{customers:,} customers",
        rate=customers / statistics.median(seconds),
        p99_ms=max(seconds) / customers * 1000,
    )


def _measure_all(port: int, world: World, phase: int, counts: dict[str, int]) -> dict[str, Measure]:
    import json

    grown = world.grown
    check_key, revenue_key = world.check["secret"], world.revenue["secret"]
    mrr = 3000 * grown["revenue"]
    page = f"after customer {world.position + 1:,}" if phase else "first page"
    measures = {
        "check": _http(
            port,
            _get("/api/v1/entitlements/check?customer=reader&feature=api_calls", key=check_key),
            counts["check"],
            f"{grown['check_customers']:,} customers, {grown['check_events']:,} events",
            lambda body: json.loads(body)["allowed"] is True,
        ),
        "ingest": _ingest(port, world, counts["ingest"], phase, f"{grown['ingest_rows']:,} rows"),
        "reconcile": _reconcile(world, counts["reconcile"], grown["reconcile"]),
        "page": _http(
            port,
            _get(
                "/api/v1/customers?limit=20" + (f"&starting_after={world.cursor}" if phase else ""),
                key=check_key,
            ),
            counts["page"],
            page,
            lambda body: (
                len(json.loads(body)["data"]) == min(20, world.listed - (world.position + 1 if phase else 0))
            ),
        ),
        "admin": _http(
            port,
            _get("/admin/customers/customer/", session=world.session),
            counts["admin"],
            f"{grown['admin_rows']:,} rows",
            lambda body: b'class="field-external_id"' in body,
        ),
        "metrics": _http(
            port,
            _get("/api/v1/metrics/revenue", key=revenue_key),
            counts["metrics"],
            f"{grown['revenue']:,} subscriptions",
            lambda body: json.loads(body)["mrr"] == {"usd": mrr},
        ),
        "dashboard": _http(
            port,
            _get("/admin/dashboard/", session=world.session),
            counts["dashboard"],
            f"{grown['revenue']:,} subscriptions",
            lambda body: b"<html" in body.lower() or b"<!doctype" in body.lower(),
        ),
    }
    return measures


def server_env() -> dict[str, str]:
    """Production settings (bench.entitlements.production_env) on this process's database, with its secret key
    and field keys, so the back office's session made here is valid there."""
    from django.conf import settings
    from django.db import connection

    from bench.entitlements import production_env

    db = connection.settings_dict
    return {
        **production_env(),
        "STATIC_ROOT": str(ROOT / "var" / "bench-scale-static"),
        "DATABASE_URL": f"postgres://{db['USER']}{':' + db['PASSWORD'] if db['PASSWORD'] else ''}@"
        f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
    }


def measure(port: int | None = None) -> list[Result]:
    """Both phases on one production server: the results, one per operation."""
    import redis
    from django.conf import settings

    from bench.entitlements import gunicorn
    from stripe_gateway.client import install_http_client

    target, counts = sizes(), requests()
    redis_url = os.environ.get("BENCH_SCALE_REDIS_URL") or settings.REDIS_URL
    redis.Redis.from_url(redis_url).flushdb()
    world = world_create()
    log = ROOT / "var" / "bench-scale-production.log"
    log.parent.mkdir(exist_ok=True)
    log.write_bytes(b"")
    env = server_env()
    # The production storage serves the back office's assets from their manifest: collected first, as a deploy does.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
    )
    phases: list[dict[str, Measure]] = []
    try:
        port = port or int(os.environ.get("BENCH_SCALE_PORT") or 0) or None
        with gunicorn(redis_url, env, WORKERS, log, port=port) as listening:
            for phase in (0, 1):
                seeded = world_grow(world, phase, target)
                print(f"phase {['small', 'large'][phase]}: seeded in {seeded:.0f} s", flush=True)
                phases.append(_measure_all(listening, world, phase, counts))
    finally:
        install_http_client(None)
        world.emulator.close()
    return [Result(name, phases[0][name], phases[1][name]) for name in OPERATIONS]


def print_results(results: list[Result]) -> None:
    from django.db import connection

    print(
        f"\nCosts as data grows (database: {connection.vendor}; production settings, {WORKERS} gunicorn workers, "
        f"{CONCURRENCY} connections): large / small, throughput ≥ 0.8× (per item ≥ 0.7×) and p99 ≤ 1.5×"
    )
    print(
        f"{'operation':<31}{'small':<34}{'large':<34}{'rate small':>12}{'rate large':>12}{'×':>7}"
        f"{'p99 small':>11}{'p99 large':>11}{'×':>7}  verdict"
    )
    for result in results:
        unit = "/s"
        print(
            f"{LABELS[result.operation]:<31}{result.small.size:<34}{result.large.size:<34}"
            f"{result.small.rate:>10.1f}{unit}{result.large.rate:>10.1f}{unit}{result.throughput:>6.2f}×"
            f"{result.small.p99_ms:>9.1f}ms{result.large.p99_ms:>9.1f}ms{result.p99:>6.2f}×  "
            f"{'PASS' if result.passed else 'FAIL'} (≥ {result.floor}×, ≤ 1.5×)"
        )


def run() -> list[Result]:
    from django.db import connection

    if connection.vendor != "postgresql":
        print("\nScale benchmark skipped: it needs DATABASE_URL=postgres://… (and Redis).")
        return []
    started = time.perf_counter()
    results = measure()
    print_results(results)
    print(f"(the whole run: {time.perf_counter() - started:.0f} s)")
    return results
