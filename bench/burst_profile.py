"""Where a Stripe burst's CPU goes, in one process: the intake and the processors of `bench.burst`'s capture,
profiled apart (cProfile), with CPU time and queries per event type.

Needs a capture kept by `BENCH_BURST_KEEP=1 make bench-burst` (the database `<DATABASE_URL's name>_burst` and
var/bench-burst/{emulator-captured.json,deliveries.json}). Each run copies the capture database, serves the
captured Stripe state from an emulator subprocess, then

1. posts every delivery to `POST /webhooks/stripe` through Django's WSGI handler and middleware (as gunicorn
   would, minus the socket), re-signed at send time; the queued tasks go to Redis db `BENCH_REDIS_URL` and are
   dropped;
2. applies every stored event with `stripe_events_process_key`, key by key in capture order (as a worker would,
   minus Celery), counting queries per event type.

Run: `DATABASE_URL=postgres://… python -m bench.burst_profile [--top N] [--sort cumulative|tottime]`.
Not part of `make bench`: it explains the burst's figures, it is not one.
"""

import argparse
import cProfile
import hashlib
import hmac
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench.burst import LOGS, _admin_sql, _database_urls, _drop, _server_env, _wait_http
from bench.setup import free_port


def _signature(secret: str, body: bytes) -> str:
    timestamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _print_stats(profile: cProfile.Profile, sort: str, top: int) -> None:
    if not getattr(profile, "on", True) or not top:
        return
    out = io.StringIO()
    pstats.Stats(profile, stream=out).strip_dirs().sort_stats(sort).print_stats(top)
    print(out.getvalue())


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--skip-intake", action="store_true")
    parser.add_argument("--no-profile", action="store_true", help="CPU per event without cProfile's overhead")
    parser.add_argument(
        "--trace", action="append", default=[], help="print the SQL of the first events of a type"
    )
    parser.add_argument("--trace-width", type=int, default=300, help="characters of each traced statement")
    args = parser.parse_args()

    database_url = os.environ["DATABASE_URL"]
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    admin_url, capture_db, _, template = _database_urls(database_url)
    profile_db = f"{capture_db}_profile"
    captured = json.loads((LOGS / "deliveries.json").read_text())
    secret, bodies = captured["secret"], [body.encode() for body in captured["bodies"]]
    _drop(admin_url, profile_db)
    _admin_sql(admin_url, f'CREATE DATABASE "{profile_db}" TEMPLATE "{capture_db}"')
    state = LOGS / "emulator-profile.json"
    shutil.copyfile(LOGS / "emulator-captured.json", state)
    port = free_port()
    emulator = subprocess.Popen(
        [sys.executable, "-m", "stripe_emulator", "--port", str(port), "--data", str(state)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/_emulator/clock")
        os.environ.update(
            _server_env(template.format(name=profile_db), redis_url, f"http://127.0.0.1:{port}")
        )
        _profile(bodies, secret, args)
    finally:
        emulator.terminate()
        emulator.wait(10)
        from django.db import connections

        connections.close_all()
        _drop(admin_url, profile_db)


def _profile(bodies: list[bytes], secret: str, args: Any) -> None:
    import django

    django.setup()
    import redis
    from django.db import connection, reset_queries
    from django.test import Client

    from webhooks.models import StripeEvent
    from webhooks.services.process import stripe_events_process_key

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    events = len(bodies)
    if not args.skip_intake:
        client = Client(HTTP_HOST="127.0.0.1")
        client.post("/webhooks/stripe", data=b"{}", content_type="application/json")  # warm imports
        profile = _Profile(enabled=not args.no_profile)
        cpu = time.process_time()
        counter = _Counter()
        with connection.execute_wrapper(counter):
            profile.enable()
            for body in bodies:
                response = client.post(
                    "/webhooks/stripe",
                    data=body,
                    content_type="application/json",
                    HTTP_STRIPE_SIGNATURE=_signature(secret, body),
                )
                assert response.status_code == 200, response.content
            profile.disable()
        cpu = time.process_time() - cpu
        print(
            f"\n=== intake: {events} deliveries, {cpu * 1000 / events:.2f} ms CPU and "
            f"{counter.total / events:.1f} queries per delivery (cProfile on: inflated) ==="
        )
        _print_stats(profile, args.sort, args.top)
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    keys = list(
        dict.fromkeys(StripeEvent.objects.order_by("received_at").values_list("ordering_key", flat=True))
    )
    types = dict(StripeEvent.objects.values_list("pk", "type"))
    per_type_queries: Counter[str] = Counter()
    per_type_count: Counter[str] = Counter(types.values())
    per_type_cpu: defaultdict[str, float] = defaultdict(float)
    counter = _Counter()
    import webhooks.services.process as services

    original = services._apply

    traced: Counter[str] = Counter()

    def timed_apply(event: StripeEvent, *, eager: bool) -> str:
        before_cpu, before_queries = time.process_time(), counter.total
        trace = event.type in args.trace and traced[event.type] < 2
        counter.log = [] if trace else None
        try:
            return original(event, eager=eager)
        finally:
            if trace:
                traced[event.type] += 1
                print(f"\n--- {event.type} {event.stripe_event_id}: {len(counter.log or [])} queries")
                for sql in counter.log or []:
                    print("   ", sql[: args.trace_width])
            counter.log = None
            per_type_cpu[event.type] += time.process_time() - before_cpu
            per_type_queries[event.type] += counter.total - before_queries

    services._apply = timed_apply  # type: ignore[assignment]
    reset_queries()
    profile = _Profile(enabled=not args.no_profile)
    cpu = time.process_time()
    with connection.execute_wrapper(counter):
        profile.enable()
        for key in keys:
            stripe_events_process_key(key=key)
        profile.disable()
    cpu = time.process_time() - cpu
    statuses = Counter(StripeEvent.objects.values_list("status", flat=True))
    print(
        f"\n=== processing: {events} events in {len(keys)} keys, {cpu * 1000 / events:.2f} ms CPU and "
        f"{counter.total / events:.1f} queries per event (cProfile on: inflated); statuses {dict(statuses)} ==="
    )
    print(f"{'type':<40}{'events':>8}{'ms/event':>10}{'queries/event':>15}")
    for event_type, count in per_type_count.most_common():
        print(
            f"{event_type:<40}{count:>8}{per_type_cpu[event_type] * 1000 / count:>10.2f}"
            f"{per_type_queries[event_type] / count:>15.1f}"
        )
    _print_stats(profile, args.sort, args.top)


class _Profile(cProfile.Profile):
    def __init__(self, *, enabled: bool) -> None:
        super().__init__()
        self.on = enabled

    def enable(self) -> None:  # type: ignore[override]
        if self.on:
            super().enable()

    def disable(self) -> None:  # type: ignore[override]
        if self.on:
            super().disable()


class _Counter:
    def __init__(self) -> None:
        self.total = 0
        self.statements: Counter[str] = Counter()
        self.log: list[str] | None = None

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.total += 1
        self.statements[sql.split(" WHERE ")[0][:120]] += 1
        if self.log is not None:
            self.log.append(sql % tuple(repr(p)[:40] for p in params) if params else sql)
        return execute(sql, params, many, context)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    run()
