"""Leased consumption (`tollgate_client.leases.LeasedQuota`) beside the server's consume it replaces, in one run
against gunicorn + PostgreSQL + Redis (issue #31):

- rate: PROCESSES client processes make uses of one customer's metered feature at once, each with its own id —
  over HTTP (`entitlements.consume`, the baseline) and from leases (every use reported before the figure is
  taken); uses per second of all processes together, and the ratio;
- the race: RACERS processes lease from one customer whose limit is RACE_LIMIT, each consuming one unit at a
  time until refused: the uses allowed must be the limit exactly;
- with usage windows (issue #51): the same rate on a feature limited per minute, hour, day and week (limits far
  above the run's use), and the race on one window of each size in turn (WINDOW_LIMIT a minute, then an hour, …):
  the uses allowed must be the window's limit exactly.

Needs DATABASE_URL=postgres://… and Redis (BENCH_ENTITLEMENTS_REDIS_URL, default redis://127.0.0.1:6379/11, flushed).
Alone: `python -m bench leases`.
"""

import os
import subprocess
import sys
import time
from typing import Any

from bench.entitlements import ROOT, _setup, gunicorn, subscribed_plan

PROCESSES = 4
HTTP_USES = 500  # per process
LEASED_USES = 50_000  # per process
RACERS = 50
RACE_LIMIT = 2000
WINDOW_LIMIT = 500


def _run(
    url: str, secret: str, customer: str, mode: str, count: int, processes: int, feature: str = "api_calls"
) -> tuple[float, int]:
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
                f"{mode}{n}-{start}-{feature}",
                str(count),
                str(start),
                feature,
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


def _race(url: str, secret: str, customer: str = "racer", feature: str = "api_calls") -> int:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'clients' / 'python'}"}
    racers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.clients.lease_consumer",
                url,
                secret,
                customer,
                feature,
                f"r{n}-{feature}-{time.time()}",
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
            windowed_http, _ = _run(url, secret, "reader", "consume", HTTP_USES, PROCESSES, "searches")
            windowed_leased, _ = _run(url, secret, "reader", "lease", LEASED_USES, PROCESSES, "searches")
            windows = _window_races(url, secret, data["project"], data["searches"])
    assert http_allowed == HTTP_USES * PROCESSES
    assert leased_allowed == LEASED_USES * PROCESSES
    counted = UsageCounter.objects.filter(
        project=data["project"], customer__external_id="reader", feature=data["calls"]
    ).get()
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
    print(f"  with 4 usage windows, consume over HTTP:  {windowed_http:>12,.0f} uses/s")
    print(
        f"  with 4 usage windows, leased consume:     {windowed_leased:>12,.0f} uses/s  = "
        f"{windowed_leased / windowed_http:,.0f}× (issue #51 asks ≥ 20×)"
    )
    for window, (racers_allowed, counted) in windows.items():
        exact = racers_allowed == counted == WINDOW_LIMIT
        print(
            f"  {RACERS} processes racing on one {window}'s window, limit {WINDOW_LIMIT}: {racers_allowed} uses "
            f"allowed, {counted} counted ({'exactly the limit' if exact else 'NOT the limit'})"
        )


def _window_races(url: str, secret: str, project: Any, searches: Any) -> dict[str, tuple[int, int]]:
    """The race on one window of each size in turn: a customer of their own on a plan whose `searches` are limited
    to WINDOW_LIMIT per that window only; (uses the racers were allowed, the window's count)."""
    from entitlements.models import UsageWindowCounter

    results: dict[str, tuple[int, int]] = {}
    for window in ("minute", "hour", "day", "week"):
        customer = f"racer-{window}"
        value = {"value": 10**12, "windows": {window: WINDOW_LIMIT}}
        subscribed_plan(project, f"race-{window}", customer, {searches: value})
        left = 60 - time.time() % 60
        if window == "minute" and left < 30:  # the whole race in one minute
            time.sleep(left + 0.5)
        allowed = _race(url, secret, customer=customer, feature="searches")
        counted = UsageWindowCounter.objects.get(
            project=project, customer__external_id=customer, span=window
        ).used
        results[window] = (allowed, counted)
    return results
