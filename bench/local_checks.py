"""Entitlement checks answered in the tenant's process (`tollgate_client.local`), beside the HTTP check they
replace, in one run against gunicorn + PostgreSQL + Redis (issue #31):

- rate: `LocalEntitlements.check` in one process vs `entitlements.check` over HTTP, both through the Python
  client, and vs the server's own rate over CONCURRENCY connections (the higher HTTP figure is the baseline);
  the local check's p50/p99 per call;
- staleness: PROCESSES client processes (`tests.clients.local_checker`) answer from their own snapshots while
  grants change the customer's limit CHANGES times: for each change and process, the seconds from just before the
  grant was sent to the process's first new answer; with the feed on (the default 0.5 s poll), and with it off
  (a snapshot lives ENTITLEMENT_SNAPSHOT_SECONDS, set to OFF_SNAPSHOT_SECONDS here).

Needs DATABASE_URL=postgres://… and Redis (BENCH_ENTITLEMENTS_REDIS_URL, default redis://127.0.0.1:6379/11, flushed).
Alone: `python -m bench local_checks`.
"""

import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from bench.entitlements import ROOT, _closed_loop, _pct, _raw, _setup, gunicorn
from bench.setup import call_times, p99

HTTP_CALLS = 2000
LOCAL_CALLS = 200_000
PROCESSES = 4
CHANGES = 15
OFF_SNAPSHOT_SECONDS = 3


def _checkers(port: int, secret: str, push: bool) -> list[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'clients' / 'python'}"}
    command = [
        sys.executable,
        "-m",
        "tests.clients.local_checker",
        f"http://127.0.0.1:{port}",
        secret,
        "reader",
    ]
    return [
        subprocess.Popen(
            [*command, "api_calls", "0.5", "push" if push else "nopush"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]


def _staleness(client: Any, port: int, secret: str, push: bool) -> list[float]:
    """Seconds until each process answered each new limit."""
    processes = _checkers(port, secret, push)
    seen: list[dict[str, float]] = [{} for _ in processes]

    def read(index: int, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            answer, at = line.split()
            seen[index].setdefault(answer, float(at))

    for index, process in enumerate(processes):
        threading.Thread(target=read, args=(index, process), daemon=True).start()
    delays: list[float] = []
    try:
        while not all(seen):
            time.sleep(0.05)
        limit = client.entitlements.check(customer="reader", feature="api_calls").limit
        for change in range(CHANGES):
            limit += 1
            sent = time.time()
            client.entitlements.grants.create(
                customer="reader", feature="api_calls", value=1, reason=f"bench change {change}"
            )
            answer = f"True/{limit}"
            deadline = time.monotonic() + 2 * OFF_SNAPSHOT_SECONDS + 5
            while not all(answer in answers for answers in seen):
                assert time.monotonic() < deadline, f"a process never answered {answer}"
                time.sleep(0.01)
            delays += [answers[answer] - sent for answers in seen]
            time.sleep(0.2)
    finally:
        for process in processes:
            process.kill()
            process.wait()
    return delays


def run() -> None:
    import redis
    from django.db import connection
    from tollgate_client import Tollgate
    from tollgate_client.local import LocalEntitlements

    redis_url = os.environ.get("BENCH_ENTITLEMENTS_REDIS_URL", "redis://127.0.0.1:6379/11")
    if connection.vendor != "postgresql":
        print(
            "\nLocal checks benchmark skipped: run `make bench` with DATABASE_URL=postgres://… (and Redis)."
        )
        return
    redis.Redis.from_url(redis_url).flushdb()
    data = _setup()
    secret = data["secret"]
    with gunicorn(redis_url, {"ENTITLEMENT_SNAPSHOT_SECONDS": str(OFF_SNAPSHOT_SECONDS)}) as port:
        url = f"http://127.0.0.1:{port}"
        with Tollgate(secret, url, timeout=10) as client:
            check = _raw("GET", "/api/v1/entitlements/check?customer=reader&feature=api_calls", secret)
            server_rate, server_latency, answers = asyncio.run(
                _closed_loop(port, lambda i: check, HTTP_CALLS)
            )
            assert all(status == 200 for status, _ in answers)
            http_times = call_times(
                lambda: client.entitlements.check(customer="reader", feature="api_calls"), rounds=4, calls=500
            )
            with LocalEntitlements(client) as local:
                expected = client.entitlements.check(customer="reader", feature="api_calls").to_dict()
                assert local.check(customer="reader", feature="api_calls").to_dict() == expected
                local_times = call_times(
                    lambda: local.check(customer="reader", feature="api_calls"),
                    rounds=10,
                    calls=LOCAL_CALLS // 10,
                )
                # With every control (4 usage windows, a credits waterfall, a spend cap): the server's answer, as fast.
                local.consume(id="bench-search", customer="reader", feature="searches")
                windowed = client.entitlements.check(customer="reader", feature="searches").to_dict()
                assert local.check(customer="reader", feature="searches").to_dict() == windowed
                assert [w["used"] for w in windowed["windows"]] == [1, 1, 1, 1]
                windowed_times = call_times(
                    lambda: local.check(customer="reader", feature="searches"),
                    rounds=10,
                    calls=LOCAL_CALLS // 10,
                )
                # …and naming a seat with its own limit and windows (an entity): the server's answer too, as fast.
                local.consume(id="bench-desk", customer="reader", feature="searches", entity="desk-1")
                seated = client.entitlements.check(customer="reader", feature="searches", entity="desk-1")
                mine = local.check(customer="reader", feature="searches", entity="desk-1")
                assert mine.to_dict() == seated.to_dict()
                assert (seated.entity.used, [w.used for w in seated.windows]) == (1, [2, 2, 2, 2])
                assert [w.used for w in seated.entity.windows] == [1, 1]  # the seat's own minute and day
                seated_times = call_times(
                    lambda: local.check(customer="reader", feature="searches", entity="desk-1"),
                    rounds=10,
                    calls=LOCAL_CALLS // 10,
                )
                # …and a seat's own credits (spent before the account's): the server's answer too, as fast.
                credited = client.entitlements.check(customer="reader", feature="ai_credits", entity="desk-1")
                assert local.check(customer="reader", feature="ai_credits", entity="desk-1").to_dict() == (
                    credited.to_dict()
                )
                assert (credited.allowed, credited.entity.balance) == (True, 10**9)
                credited_times = call_times(
                    lambda: local.check(customer="reader", feature="ai_credits", entity="desk-1"),
                    rounds=10,
                    calls=LOCAL_CALLS // 10,
                )
            pushed = _staleness(client, port, secret, push=True)
            unpushed = _staleness(client, port, secret, push=False)
    client_rate = 1e6 / statistics.mean(http_times)  # call_times: microseconds per call
    local_rate = 1e6 / statistics.mean(local_times)
    http_rate = max(client_rate, server_rate)
    print(
        "\nLocal entitlement checks (tollgate_client.local) vs the HTTP check, gunicorn + PostgreSQL + Redis"
    )
    print(
        f"  HTTP check, one client process:   {client_rate:>12,.0f} checks/s  (p99 {p99(http_times) / 1e3:.2f} ms)"
    )
    print(
        f"  HTTP check, server, {8} conns:    {server_rate:>12,.0f} checks/s  (p99 {_pct(server_latency, 0.99):.2f} ms)"
    )
    print(
        f"  local check, one process:         {local_rate:>12,.0f} checks/s  = {local_rate / http_rate:,.0f}× the "
        f"higher HTTP rate (issue #31 asks ≥ 100×); per call p50 {statistics.median(local_times):.1f} µs, "
        f"p99 {p99(local_times):.1f} µs (asks ≤ 20 µs)"
    )
    windowed_rate = 1e6 / statistics.mean(windowed_times)
    print(
        f"  local check, every control:       {windowed_rate:>12,.0f} checks/s  = {windowed_rate / http_rate:,.0f}× "
        f"the higher HTTP rate (issue #51 asks ≥ 100×); per call p50 {statistics.median(windowed_times):.1f} µs, "
        f"p99 {p99(windowed_times):.1f} µs (asks ≤ 20 µs)"
    )
    seated_rate = 1e6 / statistics.mean(seated_times)
    print(
        f"  local check, every control and a seat: {seated_rate:>7,.0f} checks/s  = {seated_rate / http_rate:,.0f}× "
        f"the higher HTTP rate (issue #51 asks ≥ 100×); per call p50 {statistics.median(seated_times):.1f} µs, "
        f"p99 {p99(seated_times):.1f} µs (asks ≤ 20 µs)"
    )
    credited_rate = 1e6 / statistics.mean(credited_times)
    print(
        f"  local check, a seat's own credits: {credited_rate:>10,.0f} checks/s  = {credited_rate / http_rate:,.0f}× "
        f"the higher HTTP rate; per call p50 {statistics.median(credited_times):.1f} µs, "
        f"p99 {p99(credited_times):.1f} µs"
    )
    print(
        f"  staleness, feed on ({PROCESSES} processes × {CHANGES} grants): p50 {_pct(pushed, 0.5) / 1e3:.2f} s, "
        f"p99 {_pct(pushed, 0.99) / 1e3:.2f} s, max {max(pushed):.2f} s (asks p99 ≤ 1 s)"
    )
    print(
        f"  staleness, feed off (snapshots of {OFF_SNAPSHOT_SECONDS} s): p50 {_pct(unpushed, 0.5) / 1e3:.2f} s, "
        f"p99 {_pct(unpushed, 0.99) / 1e3:.2f} s, max {max(unpushed):.2f} s (asks ≤ valid_until)"
    )
