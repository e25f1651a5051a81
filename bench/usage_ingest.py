"""Usage ingest into the partitioned usage-event table (issue #30), small data vs large data in one run:

- `POST /usage/batch` of 1,000 events end to end (gunicorn, PostgreSQL, Redis) vs a raw psycopg `COPY` of the same
  rows into the same table (every column the batch writes, the same 50 customers in turn, their period starts),
  alternated batch, COPY, batch, COPY … so a machine that speeds up or slows down moves both sides alike; each
  round's ratio and their median are printed, the batch ratio asked ≥ 0.5× of COPY;
- the same after BENCH_USAGE_ROWS (default 5,000,000) more events (and their keys) sit in the table, spread over
  the current month and the three before it: ingest per event must stay ≥ 0.7× of what it was on small data.

Needs DATABASE_URL=postgres://… and Redis (BENCH_ENTITLEMENTS_REDIS_URL, default redis://127.0.0.1:6379/11,
flushed). `python -m bench usage_ingest`.
"""

import asyncio
import json
import os
import statistics
import time
from typing import Any

from bench.entitlements import (
    BATCH_SIZE,
    BATCHES,
    _copy_batch,
    _copy_connect,
    _copy_customers,
    _raw,
    _request,
    _setup,
    gunicorn,
)

LARGE_ROWS = int(os.environ.get("BENCH_USAGE_ROWS") or 5_000_000)


async def _warm(port: int, secret: str, tag: str) -> None:
    """The customers exist, their snapshots are cached (steady state)."""
    for round_ in range(2):
        events = [
            {"id": f"warm-{tag}-{round_}-{i}", "customer": f"user-{i}", "feature": "api_calls", "quantity": 1}
            for i in range(50)
        ]
        await _request(
            port, _raw("POST", "/api/v1/usage/batch", secret, json.dumps({"events": events}).encode())
        )


async def _batch(port: int, secret: str, tag: str, b: int) -> float:
    """One batch of BATCH_SIZE new events (50 customers in turn): seconds taken."""
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
    elapsed = time.perf_counter() - started
    assert status == 200, body
    assert json.loads(body) == {"accepted": BATCH_SIZE, "duplicates": 0}, body
    return elapsed


def _rounds(port: int, secret: str, project: Any, feature: Any, tag: str) -> list[tuple[float, float]]:
    """BATCHES rounds of one batch then one COPY of as many rows: [(batch seconds, COPY seconds)]."""
    asyncio.run(_warm(port, secret, tag))
    customers = _copy_customers(project, feature)
    rounds = []
    with _copy_connect() as conn:
        for b in range(BATCHES):
            batch = asyncio.run(_batch(port, secret, tag, b))
            rounds.append(
                (batch, _copy_batch(conn, project, feature, customers, f"{tag}-{b}-{time.time_ns()}"))
            )
    return rounds


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

    from customers.models import Customer

    if connection.vendor != "postgresql":
        print("\nUsage ingest benchmark skipped: it needs DATABASE_URL=postgres://… (and Redis).")
        return
    redis_url = os.environ.get("BENCH_ENTITLEMENTS_REDIS_URL", "redis://127.0.0.1:6379/11")
    redis.Redis.from_url(redis_url).flushdb()
    data = _setup()
    secret, project, feature = data["secret"], data["project"], data["calls"]
    results: dict[str, list[tuple[float, float]]] = {}
    with gunicorn(redis_url) as port:
        results["small"] = _rounds(port, secret, project, feature, "small")
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM entitlements_usageevent")
            small_rows = cursor.fetchone()[0]
        customer_id = str(Customer.objects.get(project=project, external_id="user-0").pk)
        fill_seconds = _fill(project, feature, customer_id, LARGE_ROWS)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM entitlements_usageevent")
            large_rows = cursor.fetchone()[0]
        results["large"] = _rounds(port, secret, project, feature, "large")
    connection.close()
    print(
        f"\nUsage ingest, partitioned table, gunicorn + PostgreSQL + Redis; {BATCHES} rounds of a batch of "
        f"{BATCH_SIZE:,} events then a COPY of as many rows; load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"filled {LARGE_ROWS:,} events (+ keys) in {fill_seconds:.0f} s: {small_rows:,} → {large_rows:,} rows"
    )
    rates = {}
    for size, rows in (("small", small_rows), ("large", large_rows)):
        rounds = results[size]
        ratios = [copy / batch for batch, copy in rounds]
        batch = BATCH_SIZE / statistics.median(b for b, _ in rounds)
        copy = BATCH_SIZE / statistics.median(c for _, c in rounds)
        rates[size] = (batch, copy)
        print(
            f"{size:<6} ({rows:>10,} rows): batch {batch:>8.0f} events/s, COPY {copy:>8.0f} events/s (medians); "
            f"batch / COPY per round {' '.join(f'{r:.2f}' for r in ratios)}, median {statistics.median(ratios):.2f}× "
            "(asks ≥ 0.50×)"
        )
    print(
        f"large / small per event: batch {rates['large'][0] / rates['small'][0]:.2f}×, "
        f"COPY {rates['large'][1] / rates['small'][1]:.2f}× (asks ≥ 0.70×)"
    )
