"""Stripe webhook intake and processing against a real server, broker and worker, with baselines measured in the
same run:

- intake: signed deliveries to `POST /webhooks/stripe` on gunicorn, closed-loop throughput vs a trivial Django
  view (`GET /health`) on the same server, and latency p50/p99 at an open-loop 200 deliveries/s;
- processing: stored events applied per second by one worker (solo pool) vs a no-op Celery task on the same
  broker. The events are stored as the intake stores them (`stripe_event_store`: each with its customer's
  ordering key, a task queued per key that has none queued), 8 `customer.subscription.updated` events for each of
  50 Stripe customers that are not Tollgate's: what every event costs (claim, route, record) without a
  processor's own writes. Timed from the first task taken to the last event's outcome.

Needs PostgreSQL (DATABASE_URL, as for the whole `make bench`) and Redis as the broker (BENCH_REDIS_URL, default
redis://127.0.0.1:6379/9, flushed by the benchmark). Loopback only; every loop is bounded in count and time.
"""

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.setup import free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_bench_intake"
CLOSED_LOOP_REQUESTS = 1500
CONCURRENCY = 8
OPEN_LOOP_RATE = 200
OPEN_LOOP_SECONDS = 5
PROCESSING_EVENTS = 400
PROCESSING_CUSTOMERS = 50


def _env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "LOG_LEVEL": "ERROR",
    }


def _signed(index: int, customer: str = "cus_unknown", prefix: str = "evt_bench_") -> tuple[bytes, str]:
    import stripe

    body = json.dumps(
        {
            "id": f"{prefix}{time.time_ns()}_{index}",
            "object": "event",
            "type": "customer.subscription.updated",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": f"sub_bench_{index}",
                    "object": "subscription",
                    "customer": customer,
                    "status": "active",
                }
            },
        }
    )
    return body.encode(), stripe.WebhookSignature.generate_signature_header(body, SECRET)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _closed_loop(session_factory: Any, call: Any, total: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        session = session_factory()
        for i in range(n):
            started = time.perf_counter()
            call(session, i)
            with lock:
                latencies.append(time.perf_counter() - started)

    per = total // CONCURRENCY
    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(worker, [per] * CONCURRENCY))
    return (per * CONCURRENCY) / (time.perf_counter() - started), latencies


def _open_loop(base: str, rate: int, seconds: int) -> list[float]:
    import requests

    latencies: list[float] = []
    lock = threading.Lock()
    payloads = [_signed(100_000 + i) for i in range(rate * seconds)]

    def send(i: int) -> None:
        body, header = payloads[i]
        started = time.perf_counter()
        response = requests.post(
            f"{base}/webhooks/stripe",
            data=body,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        with lock:
            latencies.append(time.perf_counter() - started)

    with ThreadPoolExecutor(32) as pool:
        start = time.perf_counter()
        for i in range(rate * seconds):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, i)
    return latencies


def _queued(client: Any) -> int:
    """The tasks waiting on the broker, over every queue (config.settings.base.TASK_QUEUES)."""
    from django.conf import settings

    return sum(int(client.llen(queue)) for queue in settings.TASK_QUEUES)


def _drain(redis_url: str, deadline_seconds: float = 120) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + deadline_seconds
    while _queued(client) and time.monotonic() < deadline:
        time.sleep(0.05)


def run() -> None:
    import redis
    import requests
    from django.db import connection

    from bench.setup import report

    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    if connection.vendor != "postgresql":
        print(
            "\nWebhooks benchmark skipped: run `make bench` with DATABASE_URL=postgres://… (it needs PostgreSQL and Redis)."
        )
        return
    redis.Redis.from_url(redis_url).flushdb()
    env = _env(database_url, redis_url)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{base}/health", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        health_rate, health_latency = _closed_loop(
            requests.Session, lambda s, i: s.get(f"{base}/health", timeout=10), CLOSED_LOOP_REQUESTS
        )
        signed = [_signed(i) for i in range(CLOSED_LOOP_REQUESTS)]

        sequence = itertools.count()  # next() on a count is atomic in CPython: each delivery sent once

        def deliver(session: Any, i: int) -> None:
            body, header = signed[next(sequence) % len(signed)]
            response = session.post(
                f"{base}/webhooks/stripe",
                data=body,
                headers={"Stripe-Signature": header, "Content-Type": "application/json"},
                timeout=10,
            )
            assert response.status_code == 200, response.text

        intake_rate, intake_latency = _closed_loop(requests.Session, deliver, CLOSED_LOOP_REQUESTS)
        open_latency = _open_loop(base, OPEN_LOOP_RATE, OPEN_LOOP_SECONDS)
    finally:
        server.terminate()
        server.wait(timeout=20)

    report(
        "Stripe webhook intake on gunicorn (2 workers), PostgreSQL + Redis — higher is better",
        [
            ("GET /health (baseline)", health_rate, "req/s"),
            ("POST /webhooks/stripe (verify, store, queue)", intake_rate, "req/s"),
        ],
        health_rate,
    )
    print(
        f"latency closed loop p50/p99: /health {_percentile(health_latency, 0.5) * 1000:.1f}/{_percentile(health_latency, 0.99) * 1000:.1f} ms, "
        f"intake {_percentile(intake_latency, 0.5) * 1000:.1f}/{_percentile(intake_latency, 0.99) * 1000:.1f} ms"
    )
    print(
        f"intake at an open-loop {OPEN_LOOP_RATE}/s for {OPEN_LOOP_SECONDS}s: p50 {_percentile(open_latency, 0.5) * 1000:.1f} ms, "
        f"p99 {_percentile(open_latency, 0.99) * 1000:.1f} ms over {len(open_latency)} deliveries"
    )

    # Processing: the queue now holds the intake's tasks; drop them and measure clean runs of each kind.
    redis.Redis.from_url(redis_url).flushdb()
    _processing(env, redis_url, database_url)


def _worker_rate(
    env: dict[str, str], redis_url: str, enqueue: Any, count: int, done: Any = None
) -> tuple[float, int]:
    """(units per second, tasks queued): `enqueue(count)` queues the work, one solo worker takes it; timed from
    its first task taken until the queue is empty and `done()` (when given) says all the work is finished."""
    import redis

    enqueue(count)
    client = redis.Redis.from_url(redis_url)
    queued = _queued(client)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=ERROR",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while _queued(client) == queued and time.monotonic() < deadline:
            time.sleep(0.005)  # the worker has started consuming
        started = time.perf_counter()
        _drain(redis_url)
        while done is not None and not done() and time.perf_counter() - started < 120:
            time.sleep(0.005)
        return count / (time.perf_counter() - started), queued
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def _processing(env: dict[str, str], redis_url: str, database_url: str) -> None:
    from bench.setup import report
    from config.celery import app
    from core.tasks import ping
    from webhooks.models import StripeEvent

    app.conf.broker_url = redis_url
    app.conf.task_always_eager = False
    app._after_fork()
    # The intake's deliveries were stored to time the intake, and no worker ran for them. Left due, this phase's
    # worker would apply them first (a fair share's hand-over serves the tenant's oldest waiting events first):
    # 2,500 of them, which took the figure from ~1,000 to 40-90 events/s once the shares existed.
    StripeEvent.objects.filter(stripe_event_id__startswith="evt_bench_").delete()

    run = time.time_ns()

    def enqueue_ping(count: int) -> None:
        for _ in range(count):
            ping.delay()

    def enqueue_events(count: int) -> None:
        from django.test.utils import override_settings

        from stripe_gateway.gateway import PLATFORM_ACCOUNT
        from webhooks.services.receive import stripe_event_store

        # As the intake does it once a delivery is verified (queueing on, as in production, not eager).
        with override_settings(CELERY_TASK_ALWAYS_EAGER=False):
            for i in range(count):
                customer = f"cus_bench_{run}_a{i % PROCESSING_CUSTOMERS}"  # keys of this run only
                body, _ = _signed(200_000 + i, customer=customer, prefix="evt_benchp_")
                stripe_event_store(account=PLATFORM_ACCOUNT, project=None, body=json.loads(body))

    def enqueue_events_one_task_each(count: int) -> None:
        """The worst case, as this benchmark measured before: a task for every event (no queue marks)."""
        from stripe_gateway.gateway import PLATFORM_ACCOUNT
        from webhooks.services.receive import ordering_key
        from webhooks.tasks import process_stripe_event

        events = []
        for i in range(count):
            customer = f"cus_bench_{run}_b{i % PROCESSING_CUSTOMERS}"
            body = json.loads(_signed(400_000 + i, customer=customer, prefix="evt_benchp_")[0])
            events.append(
                StripeEvent(
                    account=PLATFORM_ACCOUNT,
                    stripe_event_id=body["id"],
                    type=body["type"],
                    stripe_created=body["created"],
                    payload=body,
                    ordering_key=ordering_key(PLATFORM_ACCOUNT, body),
                )
            )
        for event in StripeEvent.objects.bulk_create(events):
            process_stripe_event.delay(event.pk, event.ordering_key)

    def applied() -> bool:
        return not StripeEvent.objects.filter(
            stripe_event_id__startswith="evt_benchp_", status__in=("received", "processing")
        ).exists()

    noop_rate, _ = _worker_rate(env, redis_url, enqueue_ping, PROCESSING_EVENTS)
    event_rate, event_tasks = _worker_rate(env, redis_url, enqueue_events, PROCESSING_EVENTS, applied)
    each_rate, each_tasks = _worker_rate(
        env, redis_url, enqueue_events_one_task_each, PROCESSING_EVENTS, applied
    )
    report(
        "Stripe event processing, one worker (solo pool), Redis broker — higher is better",
        [
            ("no-op task (baseline)", noop_rate, "tasks/s"),
            (f"Stripe events (claim, route, record; {event_tasks} tasks)", event_rate, "events/s"),
            (f"  the same, one task per event ({each_tasks} tasks)", each_rate, "events/s"),
        ],
        noop_rate,
    )
