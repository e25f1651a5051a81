"""Usage ingest into the partitioned usage-event table (issue #30), small data vs large data in one run:

- `POST /usage/batch` of 1,000 events end to end (gunicorn, PostgreSQL, Redis) vs a raw psycopg `COPY` of the same
  rows into the same table, the batch ratio asked ≥ 0.5× of COPY;
- the same after BENCH_USAGE_ROWS (default 5,000,000) more events (and their keys) sit in the table, spread over
  the current month and the three before it: ingest per event must stay ≥ 0.7× of what it was on small data.

Needs DATABASE_URL=postgres://… and Redis (BENCH_ENTITLEMENTS_REDIS_URL, default redis://127.0.0.1:6379/11,
flushed). `python -m bench usage_ingest`.
"""

import asyncio
import json
import os
import time
from typing import Any

from bench.entitlements import BATCH_SIZE, BATCHES, _copy_rate, _customer_id, _raw, _request, _setup, gunicorn

LARGE_ROWS = int(os.environ.get("BENCH_USAGE_ROWS") or 5_000_000)


async def _batches(port: int, secret: str, tag: str) -> tuple[float, list[float]]:
    """BATCHES batches of BATCH_SIZE new events (50 customers), after a warm-up: (events/s, latencies)."""
    for round_ in range(2):  # the customers exist, their snapshots are cached (steady state)
        events = [
            {"id": f"warm-{tag}-{round_}-{i}", "customer": f"user-{i}", "feature": "api_calls", "quantity": 1}
            for i in range(50)
        ]
        await _request(
            port, _raw("POST", "/api/v1/usage/batch", secret, json.dumps({"events": events}).encode())
        )
    latencies = []
    for b in range(BATCHES):
        events = [
            {
                "id": f"batch-{tag}-{b}-{i}",
                "customer": f"user-{i % 50}",
                "feature": "api_calls",
                "quantity": 1,
                "properties": {"path": "/v1/things"},
            }
            for i in range(BATCH_SIZE)
        ]
        raw = _raw("POST", "/api/v1/usage/batch", secret, json.dumps({"events": events}).encode())
        started = time.perf_counter()
        status, body = await _request(port, raw)
        latencies.append(time.perf_counter() - started)
        assert status == 200, body
        assert json.loads(body) == {"accepted": BATCH_SIZE, "duplicates": 0}, body
    return BATCH_SIZE * BATCHES / sum(latencies), latencies


def _fill(project: Any, feature: Any, customer_id: str, rows: int) -> float:
    """`rows` more events with their keys, written server-side in 500,000-row steps; seconds taken."""
    from django.db import connection, transaction
    from django.utils import timezone

    from entitlements.models import UsageEvent, UsageEventKey
    from entitlements.services.usage_partitions import month_add, month_of, usage_partitions_ensure

    current = month_of(timezone.now())
    usage_partitions_ensure(months=[month_add(current, -n) for n in range(4)])
    table, keys = UsageEvent._meta.db_table, UsageEventKey._meta.db_table
    started = time.perf_counter()
    step = 500_000
    for first in range(0, rows, step):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH t AS MATERIALIZED (
                    SELECT 'uev_fill' || n AS id, 'fill-' || n AS event_id,
                           now() - (n %% (90 * 24 * 60)) * interval '1 minute' AS ts
                    FROM generate_series(%s::bigint, %s::bigint) AS n
                ), k AS (
                    INSERT INTO {keys} (project_id, event_id, customer_id, usage_event_id, "timestamp")
                    SELECT %s, event_id, %s, id, ts FROM t
                )
                INSERT INTO {table} (id, project_id, customer_id, feature_id, event_id, kind, quantity, "timestamp",
                    properties, meter_status, meter_attempts, meter_error, created_at)
                SELECT id, %s, %s, %s, event_id, 'usage', 1, ts, '{{"path": "/v1/things"}}', '', 0, '', ts FROM t
                """,
                [
                    first,
                    min(first + step, rows) - 1,
                    project.pk,
                    customer_id,
                    project.pk,
                    customer_id,
                    feature.pk,
                ],
            )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")
        cursor.execute(f"ANALYZE {keys}")
    return time.perf_counter() - started


def run() -> None:
    import redis
    from django.db import connection

    if connection.vendor != "postgresql":
        print("\nUsage ingest benchmark skipped: it needs DATABASE_URL=postgres://… (and Redis).")
        return
    redis_url = os.environ.get("BENCH_ENTITLEMENTS_REDIS_URL", "redis://127.0.0.1:6379/11")
    redis.Redis.from_url(redis_url).flushdb()
    data = _setup()
    secret, project, feature = data["secret"], data["project"], data["calls"]
    results: dict[str, Any] = {}
    with gunicorn(redis_url) as port:
        results["small"] = asyncio.run(_batches(port, secret, "small"))
        customer_id = _customer_id(project)
        results["small_copy"] = _copy_rate(project, feature, customer_id)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM entitlements_usageevent")
            small_rows = cursor.fetchone()[0]
        fill_seconds = _fill(project, feature, customer_id, LARGE_ROWS)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM entitlements_usageevent")
            large_rows = cursor.fetchone()[0]
        results["large"] = asyncio.run(_batches(port, secret, "large"))
        results["large_copy"] = _copy_rate(project, feature, customer_id)
    print(
        f"\nUsage ingest, partitioned table, gunicorn + PostgreSQL + Redis; batches of {BATCH_SIZE:,} × {BATCHES}"
    )
    print(
        f"filled {LARGE_ROWS:,} events (+ keys) in {fill_seconds:.0f} s: {small_rows:,} → {large_rows:,} rows"
    )
    for size, rows in (("small", small_rows), ("large", large_rows)):
        batch, copy = results[size][0], results[f"{size}_copy"][0]
        print(
            f"{size:<6} ({rows:>10,} rows): batch {batch:>8.0f} events/s, COPY {copy:>8.0f} events/s, "
            f"batch / COPY {batch / copy:.2f}× (asks ≥ 0.50×)"
        )
    print(
        f"large / small per event: batch {results['large'][0] / results['small'][0]:.2f}×, "
        f"COPY {results['large_copy'][0] / results['small_copy'][0]:.2f}× (asks ≥ 0.70×)"
    )
