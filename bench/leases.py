"""Leased consumption (`tollgate_client.leases.LeasedQuota`) beside the server's consume it replaces, in one run
against gunicorn + PostgreSQL + Redis (issue #31):

- rate: PROCESSES client processes make uses of one customer's metered feature at once, each with its own id —
  over HTTP (`entitlements.consume`, the baseline) and from leases (every use reported before the figure is
  taken); uses per second of all processes together, and the ratio;
- the race: RACERS processes lease from one customer whose limit is RACE_LIMIT, each consuming one unit at a
  time until refused: the uses allowed must be the limit exactly.

Needs DATABASE_URL=postgres://… and Redis (BENCH_ENTITLEMENTS_REDIS_URL, default redis://127.0.0.1:6379/11, flushed).
Alone: `python -m bench leases`.
"""

import os
import subprocess
import sys
import time

from bench.entitlements import ROOT, _setup, gunicorn

PROCESSES = 4
HTTP_USES = 500  # per process
LEASED_USES = 50_000  # per process
RACERS = 50
RACE_LIMIT = 2000


def _run(url: str, secret: str, customer: str, mode: str, count: int, processes: int) -> tuple[float, int]:
    """(uses per second of all processes, uses allowed)."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'clients' / 'python'}"}
    start = time.time() + 3  # every process imported and connected by then
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.lease_worker",
                url,
                secret,
                customer,
                mode,
                f"{mode}{n}-{start}",
                str(count),
                str(start),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    results = [worker.communicate(timeout=600)[0].split() for worker in workers]
    slowest = max(float(elapsed) for elapsed, _ in results)
    return count * processes / slowest, sum(int(allowed) for _, allowed in results)


def _race(url: str, secret: str) -> int:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'clients' / 'python'}"}
    racers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.clients.lease_consumer",
                url,
                secret,
                "racer",
                "api_calls",
                f"r{n}",
                "10",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(RACERS)
    ]
    return sum(int(racer.communicate(timeout=600)[0]) for racer in racers)


def run() -> None:
    import redis
    from django.db import connection
    from tollgate_client import Tollgate

    from entitlements.models import UsageCounter

    redis_url = os.environ.get("BENCH_ENTITLEMENTS_REDIS_URL", "redis://127.0.0.1:6379/11")
    if connection.vendor != "postgresql":
        print("\nLeases benchmark skipped: run `make bench` with DATABASE_URL=postgres://… (and Redis).")
        return
    redis.Redis.from_url(redis_url).flushdb()
    data = _setup()
    secret = data["secret"]
    with gunicorn(redis_url) as port:
        url = f"http://127.0.0.1:{port}"
        http_rate, http_allowed = _run(url, secret, "reader", "consume", HTTP_USES, PROCESSES)
        leased_rate, leased_allowed = _run(url, secret, "reader", "lease", LEASED_USES, PROCESSES)
        with Tollgate(secret, url, timeout=10) as client:
            client.entitlements.grants.create(
                customer="racer", feature="api_calls", value=RACE_LIMIT, reason="race"
            )
            allowed = _race(url, secret)
    assert http_allowed == HTTP_USES * PROCESSES
    assert leased_allowed == LEASED_USES * PROCESSES
    counted = UsageCounter.objects.filter(project=data["project"], customer__external_id="reader").get()
    assert (counted.used, counted.held) == (HTTP_USES * PROCESSES + LEASED_USES * PROCESSES, 0)
    connection.close()
    print("\nLeased consume (tollgate_client.leases) vs the server's consume, gunicorn + PostgreSQL + Redis")
    print(f"  consume over HTTP, {PROCESSES} processes:  {http_rate:>12,.0f} uses/s")
    print(
        f"  leased consume, {PROCESSES} processes:     {leased_rate:>12,.0f} uses/s  = {leased_rate / http_rate:,.0f}× "
        "(issue #31 asks ≥ 20×; every use reported before the clock stops)"
    )
    print(
        f"  {RACERS} processes racing on one customer, limit {RACE_LIMIT}: {allowed} uses allowed "
        f"({'exactly the limit' if allowed == RACE_LIMIT else 'NOT the limit'})"
    )
