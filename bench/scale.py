"""Costs that stay flat as data grows (issue #30, point 6): each operation measured at small and at large data in
one run, on production web servers, and reported as a throughput ratio and a p99 ratio (large / small) against
the targets: throughput ≥ 0.8× and p99 ≤ 1.5× (reconciliation and usage ingest, per item: ≥ 0.7×).

The operations, and the data each one grows with (small → large; `BENCH_SCALE=full` gives the issue's sizes):

- warm check (`GET /entitlements/check`): its project's customers and usage events (1,000 → 101,000 customers,
  10 → 100,000 events);
- usage ingest (`POST /usage/batch` of BATCH_SIZE events, per event): the usage table (→ 5 million rows);
- reconciliation (`reconcile`, one project against Stripe, per customer): the project's customers, each with a
  subscription at Stripe and its mirror (100 → 5,000);
- cursor page (`GET /customers?limit=20`): the first page of the small list, the page after the 100,000th newest
  customer of the large one (core.pagination);
- the back office's customer list (`/admin/customers/customer/`, every project): the customers table
  (→ 126,000 rows);
- revenue metrics (`GET /metrics/revenue`) and the dashboard (`/admin/dashboard/`, every project): the
  project's live subscriptions and payments (100 → 20,000).

Two databases, `<DATABASE_URL's>_small` and `<…>_large` (made from the database of DATABASE_URL as their template,
so both start equal; dropped at the end unless `BENCH_SCALE_KEEP=1`), each seeded with the same projects
(bench.scale_seed) and served by its own gunicorn with `config.settings.production` (3 sync workers, JSON request
logs into var/bench-scale-<side>.log); the reconciliation runs in this process, the default connection switched
between the databases, each side with its own in-process Stripe emulator. Both sides are seeded before anything
is measured; then each operation is measured in ROUNDS rounds, the sides alternating (small, large; large, small;
…) so that a machine whose load changes weighs on both alike: the throughput ratio is the median of the rounds'
ratios, the p99s come from each side's requests pooled over the rounds. HTTP operations are driven by
bench.entitlements' closed-loop client (16 connections).

Sizes: `BENCH_SCALE=full` (the issue's), else small ones the test suite runs; any size alone with
`BENCH_SCALE_<NAME>=small,large` (names in SIZES, e.g. `BENCH_SCALE_RECONCILE=100,1000`), requests per side and
round with `BENCH_SCALE_REQUESTS_<OPERATION>`, rounds with `BENCH_SCALE_ROUNDS`. Needs PostgreSQL (a role that
may create databases) and Redis (`BENCH_SCALE_REDIS_URL`, default REDIS_URL, flushed). `python -m bench scale`.
"""

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.scale_seed import World, world_create, world_fill

ROOT = Path(__file__).resolve().parent.parent
BATCH_SIZE = 1000
CONCURRENCY = 16
WORKERS = 3
SIDES = ("small", "large")

# name → (small, large), for the suite (default) and for the figures (BENCH_SCALE=full).
SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "default": {
        "check_customers": (100, 2_000),
        "check_events": (10, 2_000),
        "ingest_rows": (0, 20_000),
        "reconcile": (5, 50),
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
# Requests per side and round (batches for the ingest, runs for the reconciliation), by scale.
REQUESTS: dict[str, dict[str, int]] = {
    "default": {
        "check": 150,
        "ingest": 2,
        "reconcile": 1,
        "page": 100,
        "admin": 20,
        "metrics": 100,
        "dashboard": 15,
    },
    "full": {
        "check": 800,
        "ingest": 3,
        "reconcile": 1,
        "page": 400,
        "admin": 40,
        "metrics": 400,
        "dashboard": 40,
    },
}
ROUNDS = {"default": 2, "full": 4}
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


def _scale() -> str:
    return "full" if os.environ.get("BENCH_SCALE") == "full" else "default"


def sizes() -> dict[str, tuple[int, int]]:
    chosen = dict(SIZES[_scale()])
    for name in chosen:
        raw = os.environ.get(f"BENCH_SCALE_{name.upper()}")
        if raw:
            small, large = (int(part) for part in raw.split(","))
            chosen[name] = (small, large)
    return chosen


def requests() -> dict[str, int]:
    return {
        name: int(os.environ.get(f"BENCH_SCALE_REQUESTS_{name.upper()}") or count)
        for name, count in REQUESTS[_scale()].items()
    }


def rounds() -> int:
    return int(os.environ.get("BENCH_SCALE_ROUNDS") or ROUNDS[_scale()])


@dataclass
class Sample:
    """One measurement of one side: items per second, and the seconds of each request (or, per item, of each
    request divided by its items)."""

    rate: float
    seconds: list[float]


@dataclass
class Result:
    """One operation: each round's rate on both sides, every request's time pooled by side, and the machine's
    1-minute load average at each round's start."""

    operation: str
    small_size: str
    large_size: str
    rates: list[tuple[float, float]] = field(default_factory=list)
    small_seconds: list[float] = field(default_factory=list)
    large_seconds: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [large / small for small, large in self.rates]

    @property
    def throughput(self) -> float:
        return statistics.median(self.ratios)

    @property
    def small_p99_ms(self) -> float:
        return _p99_ms(self.small_seconds)

    @property
    def large_p99_ms(self) -> float:
        return _p99_ms(self.large_seconds)

    @property
    def p99(self) -> float:
        return self.large_p99_ms / self.small_p99_ms

    @property
    def floor(self) -> float:
        return 0.7 if self.operation in PER_ITEM else 0.8

    @property
    def passed(self) -> bool:
        return self.throughput >= self.floor and self.p99 <= 1.5


def _p99_ms(seconds: list[float]) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000


# --- the two databases --------------------------------------------------------------------------------------


def _use(database: str) -> None:
    """Points the default connection at `database` (closed now, it reconnects there on its next query)."""
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = database


def _activate(world: World) -> None:
    """The side's database and Stripe emulator, for what runs in this process."""
    from stripe_emulator.sdk import EmulatorHTTPClient
    from stripe_gateway.client import install_http_client

    _use(world.database)
    install_http_client(EmulatorHTTPClient(world.emulator))


@contextlib.contextmanager
def databases() -> Iterator[dict[str, str]]:
    """The two sides' databases, copies of the current one (dropped after unless BENCH_SCALE_KEEP=1); the
    default connection points back at the current one after."""
    from django.db import connection

    base = connection.settings_dict["NAME"]
    names = {side: f"{base}_{side}" for side in SIDES}

    def drop() -> None:
        _use(base)
        with connection._nodb_cursor() as cursor:
            for name in names.values():
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    drop()
    with connection._nodb_cursor() as cursor:
        for name in names.values():
            cursor.execute(f'CREATE DATABASE "{name}" TEMPLATE "{base}"')
    try:
        yield names
    finally:
        if os.environ.get("BENCH_SCALE_KEEP") == "1":
            _use(base)
        else:
            drop()


def server_env(database: str) -> dict[str, str]:
    """Production settings (bench.entitlements.production_env) on `database`, with this process's secret key
    and field keys, so the back office's session made here is valid there."""
    from django.conf import settings
    from django.db import connection

    from bench.entitlements import production_env

    db = connection.settings_dict
    return {
        **production_env(),
        "STATIC_ROOT": str(ROOT / "var" / "bench-scale-static"),
        "DATABASE_URL": f"postgres://{db['USER']}{':' + db['PASSWORD'] if db['PASSWORD'] else ''}@"
        f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{database}",
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
    }


# --- measuring ----------------------------------------------------------------------------------------------


def _get(path: str, *, key: str = "", session: str = "") -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if session:
        lines.append(f"Cookie: sessionid={session}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _http(port: int, raw: bytes, total: int, check: Callable[[bytes], bool]) -> Sample:
    from bench.entitlements import _closed_loop

    async def measure() -> tuple[float, list[float], list[tuple[int, bytes]]]:
        # Every worker warm (its caches, its connection): as many connections at once as the measurement's.
        _, _, warm = await _closed_loop(port, lambda i: raw, CONCURRENCY, CONCURRENCY)
        assert all(status == 200 for status, _ in warm), warm[0][1][:300]
        return await _closed_loop(port, lambda i: raw, total, CONCURRENCY)

    rate, latencies, answers = asyncio.run(measure())
    bad = [(status, body[:200]) for status, body in answers if status != 200 or not check(body)]
    assert not bad, bad[:3]
    return Sample(rate=rate, seconds=latencies)


def _ingest(port: int, world: World, batches: int, name: str) -> Sample:
    from bench.entitlements import _raw, _request

    secret = world.ingest["secret"]

    def batch(prefix: str) -> bytes:
        events = [
            {"id": f"{prefix}-{i}", "customer": f"user-{i % 50}", "feature": "api_calls", "quantity": 1}
            for i in range(BATCH_SIZE)
        ]
        return _raw("POST", "/api/v1/usage/batch", secret, json.dumps({"events": events}).encode())

    async def measure() -> list[float]:
        # The customers made and their snapshots cached (steady state): a side's first batches are not timed.
        for warm in range(0 if world.ingest.get("warm") else 2):
            status, body = await _request(port, batch(f"warm-{warm}"))
            assert status == 200, body[:300]
        world.ingest["warm"] = True
        latencies = []
        for number in range(batches):
            raw = batch(f"{name}-{number}")
            started = time.perf_counter()
            status, body = await _request(port, raw)
            latencies.append(time.perf_counter() - started)
            assert status == 200, body[:300]
            assert json.loads(body) == {"accepted": BATCH_SIZE, "duplicates": 0}, body[:300]
        return latencies

    latencies = asyncio.run(measure())
    return Sample(
        rate=BATCH_SIZE * len(latencies) / sum(latencies), seconds=[s / BATCH_SIZE for s in latencies]
    )


def _reconcile(world: World, runs: int) -> Sample:
    """`runs` reconciliations of the side's project (in this process): customers per second, and each run's
    time per customer."""
    from billing.services.reconcile import reconcile

    _activate(world)
    customers = world.sizes["reconcile"]
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        run = reconcile(project=world.reconcile)
        seconds.append(time.perf_counter() - started)
        assert (run.status, run.drift_count) == ("completed", 0), (run.status, run.error, run.drift_count)
    return Sample(rate=customers * len(seconds) / sum(seconds), seconds=[s / customers for s in seconds])


def _measure(operation: str, side: str, port: int, world: World, count: int, name: str) -> Sample:
    sizes = world.sizes
    if operation == "check":
        return _http(
            port,
            _get("/api/v1/entitlements/check?customer=reader&feature=api_calls", key=world.check["secret"]),
            count,
            lambda body: json.loads(body)["allowed"] is True,
        )
    if operation == "ingest":
        return _ingest(port, world, count, name)
    if operation == "reconcile":
        return _reconcile(world, count)
    if operation == "page":
        deep = side == "large"
        expected = min(20, world.listed - (world.position + 1 if deep else 0))
        return _http(
            port,
            _get(
                "/api/v1/customers?limit=20" + (f"&starting_after={world.cursor}" if deep else ""),
                key=world.check["secret"],
            ),
            count,
            lambda body: len(json.loads(body)["data"]) == expected,
        )
    if operation == "admin":
        return _http(
            port,
            _get("/admin/customers/customer/", session=world.session),
            count,
            lambda body: b'class="field-external_id"' in body,
        )
    if operation == "metrics":
        mrr = 3000 * sizes["revenue"]
        return _http(
            port,
            _get("/api/v1/metrics/revenue", key=world.revenue["secret"]),
            count,
            lambda body: json.loads(body)["mrr"] == ({"usd": mrr} if mrr else {}),
        )
    assert operation == "dashboard", operation
    return _http(
        port,
        _get("/admin/dashboard/", session=world.session),
        count,
        lambda body: b"<html" in body.lower() or b"<!doctype" in body.lower(),
    )


def _size(operation: str, side: str, world: World) -> str:
    sizes = world.sizes
    return {
        "check": f"{sizes['check_customers']:,} customers, {sizes['check_events']:,} events",
        "ingest": f"{sizes['ingest_rows']:,} rows",
        "reconcile": f"{sizes['reconcile']:,} customers",
        "page": f"after customer {world.position + 1:,}" if side == "large" else "first page",
        "admin": f"{sizes['admin_rows']:,} rows",
        "metrics": f"{sizes['revenue']:,} subscriptions",
        "dashboard": f"{sizes['revenue']:,} subscriptions",
    }[operation]


def measure(port: int | None = None) -> list[Result]:
    """Both sides seeded, then every operation in alternating rounds: the results, one per operation."""
    import redis
    from django.conf import settings

    from bench.entitlements import gunicorn
    from stripe_gateway.client import install_http_client

    target, counts, many = sizes(), requests(), rounds()
    redis_url = os.environ.get("BENCH_SCALE_REDIS_URL") or settings.REDIS_URL
    redis.Redis.from_url(redis_url).flushdb()
    worlds: dict[str, World] = {}
    results: list[Result] = []
    with databases() as names, contextlib.ExitStack() as stack:
        try:
            for index, side in enumerate(SIDES):
                _use(names[side])
                started = time.perf_counter()
                worlds[side] = world_create(names[side])
                took = world_fill(
                    worlds[side],
                    {name: pair[index] for name, pair in target.items() if name != "admin_rows"},
                    target["admin_rows"][index],
                )
                parts = ", ".join(f"{part} {seconds:.0f} s" for part, seconds in took.items())
                print(f"{side} side seeded in {time.perf_counter() - started:.0f} s ({parts})", flush=True)
            env = {side: server_env(names[side]) for side in SIDES}
            # The production storage serves the back office's assets from their manifest: collected first, as a
            # deploy does.
            subprocess.run(
                [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
                cwd=ROOT,
                env={**os.environ, **env["small"]},
                check=True,
            )
            ports: dict[str, int] = {}
            port = port or int(os.environ.get("BENCH_SCALE_PORT") or 0) or None
            for index, side in enumerate(SIDES):
                log = ROOT / "var" / f"bench-scale-{side}.log"
                log.parent.mkdir(exist_ok=True)
                log.write_bytes(b"")
                ports[side] = stack.enter_context(
                    gunicorn(redis_url, env[side], WORKERS, log, port=port + index if port else None)
                )
            for side in SIDES:  # every worker booted (the master listens before its workers have started)
                _http(ports[side], _get("/live"), WORKERS * 10, lambda body: True)
            for operation in OPERATIONS:
                result = Result(
                    operation,
                    _size(operation, "small", worlds["small"]),
                    _size(operation, "large", worlds["large"]),
                )
                for number in range(many):
                    result.loads.append(os.getloadavg()[0])
                    order = SIDES if number % 2 == 0 else SIDES[::-1]
                    samples = {
                        side: _measure(
                            operation, side, ports[side], worlds[side], counts[operation], f"round-{number}"
                        )
                        for side in order
                    }
                    result.rates.append((samples["small"].rate, samples["large"].rate))
                    result.small_seconds += samples["small"].seconds
                    result.large_seconds += samples["large"].seconds
                print(
                    f"· {LABELS[operation]}: {result.throughput:.2f}× (rounds "
                    f"{', '.join(f'{ratio:.2f}' for ratio in result.ratios)}), p99 {result.p99:.2f}×",
                    flush=True,
                )
                results.append(result)
        finally:
            install_http_client(None)
            for world in worlds.values():
                world.emulator.close()
    return results


def print_results(results: list[Result]) -> None:
    from django.db import connection

    print(
        f"\nCosts as data grows (database: {connection.vendor}; production settings, {WORKERS} gunicorn workers "
        f"a side, {CONCURRENCY} connections; {rounds()} alternating rounds): large / small, throughput (median of "
        "the rounds' ratios) ≥ 0.8× (per item ≥ 0.7×) and p99 (each side's requests pooled) ≤ 1.5×"
    )
    print(
        f"{'operation':<31}{'small':<34}{'large':<34}{'rounds':<30}{'×':>7}"
        f"{'p99 small':>11}{'p99 large':>11}{'×':>7}  {'load':<11} verdict"
    )
    for result in results:
        rounds_text = " ".join(f"{ratio:.2f}" for ratio in result.ratios)
        load = f"{min(result.loads):.1f}–{max(result.loads):.1f}"
        print(
            f"{LABELS[result.operation]:<31}{result.small_size:<34}{result.large_size:<34}{rounds_text:<30}"
            f"{result.throughput:>6.2f}×{result.small_p99_ms:>9.2f}ms{result.large_p99_ms:>9.2f}ms"
            f"{result.p99:>6.2f}×  {load:<11} {'PASS' if result.passed else 'FAIL'} (≥ {result.floor}×, ≤ 1.5×)"
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
