"""Per-tenant fairness: tenant B's p99 at its usual rate alone, then while tenant A bursts at 10× its usual
rate, for each kind of burst, ROUNDS times interleaved (BENCH_FAIRNESS_ROUNDS, default 4; each B's p99
of 40 samples per phase is noisy alone); the ratio is B's p99 during A's bursts over B's p99 alone
(pooled over the rounds, each round's too; target ≤ 1.2×).

- usage: `POST /usage` on gunicorn (2 workers), open loop; A's excess past PROJECT_USAGE_RATE_LIMIT_PER_SECOND
  gets 429 (counted); B's latency is the request's.
- Stripe events: signed deliveries posted to `POST /webhooks/stripe/<project>` on gunicorn (2 workers), as Stripe
  sends them (each of A's on a customer of its own, so every event is a key of its own), applied by a real Celery
  worker (prefork, WORKERS processes); B's latency is from the send to its event's `processed_at`, split into
  send → stored, stored → start of processing, start → done. (Stored in this process instead, A's and B's
  intake shared one interpreter lock: B's p99 tripled for a reason no deployment has.)
- deliveries: tenant events recorded (`event_record`), delivered by the same kind of worker; A's endpoint answers
  after SLOW_SECONDS, B's at once; B's latency is from the commit to its endpoint's receipt.

Needs PostgreSQL (DATABASE_URL) and Redis as the cache and broker (REDIS_URL; the benchmark flushes that
database). Loopback only; every phase is bounded in time. 2 shared cores make the figures noisy: read the
spread, not the second decimal. BENCH_FAIRNESS_KINDS=stripe,usage runs only those kinds; BENCH_FAIRNESS_WORKERS
changes the worker's processes.
"""

import hashlib
import hmac
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.setup import free_port

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 8  # each phase
ROUNDS = int(
    os.environ.get("BENCH_FAIRNESS_ROUNDS", "4")
)  # alone, then during A's burst, this many times (interleaved: the machine's load drifts)
WORKERS = int(os.environ.get("BENCH_FAIRNESS_WORKERS", "3"))  # the Celery worker's processes
SLOW_SECONDS = 1.0
# (B's usual rate, A's usual rate) per kind, per second; A bursts at 10× its usual rate.
# Stripe events: A's usual rate is B's, so its burst (50/s) is about half of what this 2-core machine applies at
# all (`make bench-burst`: ~110 events/s, intake included). BENCH_FAIRNESS_STRIPE_A_RATE=10 makes the burst the
# machine's whole capacity: then B shares every CPU with A's intake, which is never refused (docs/performance.md).
RATES = {
    "usage": (5, 5),
    "stripe": (5, int(os.environ.get("BENCH_FAIRNESS_STRIPE_A_RATE", "5"))),
    "deliveries": (4, 2),
}
USAGE_LIMIT = 10  # PROJECT_USAGE_RATE_LIMIT_PER_SECOND: 2× a tenant's usual rate


def _env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "API_RATE_LIMIT_PER_MINUTE": str(10**9),  # the key's limit out of the way: the project's is measured
        "PROJECT_USAGE_RATE_LIMIT_PER_SECOND": str(USAGE_LIMIT),
        "LOG_LEVEL": "ERROR",
    }


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000 if ordered else float("nan")
    )


def _paced(rate: float, seconds: float, call: Callable[[int], None], pool: ThreadPoolExecutor) -> list[Any]:
    """Calls `call(i)` at `rate` per second for `seconds` (open loop: a slow answer delays no later call)."""
    futures = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        futures.append(pool.submit(call, i))
    return futures


def _together(*loads: tuple[float, Callable[[int], None]], seconds: float = SECONDS) -> None:
    """Runs each (rate, call) paced, at the same time, and waits for every call."""
    with ThreadPoolExecutor(64) as pool:
        threads = [
            threading.Thread(target=lambda r=rate, c=call: [f.result() for f in _paced(r, seconds, c, pool)])
            for rate, call in loads
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


@contextmanager
def _process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True)
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _worker(env: dict[str, str]) -> Any:
    return _process(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=prefork",
            f"--concurrency={WORKERS}",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=ERROR",
        ],
        env,
    )


@contextmanager
def _gunicorn(env: dict[str, str], port: int) -> Iterator[None]:
    """gunicorn (2 sync workers) on 127.0.0.1:`port`, answering once the block starts."""
    import requests

    args = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    with _process([*args, "--log-level", "warning"], env):
        for _ in range(200):
            try:
                requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        yield


def _tenants() -> tuple[Any, str, Any, str]:
    from django.db import transaction

    from catalog.models import Feature, Product, ProductFeature
    from core.actors import Actor
    from core.ids import random_token
    from projects.services import projects as project_services

    made = []
    for name in ("a", "b"):
        slug = f"bench-fair-{name}-{random_token(6).lower()}"
        project, _, secret = project_services.project_create(
            actor=Actor.system("bench"), slug=slug, name=slug
        )
        with transaction.atomic():
            calls = Feature.objects.create(project=project, key="calls", name="Calls", type="metered")
            free = Product.objects.create(project=project, key="free", name="Free")
            ProductFeature.objects.create(product=free, feature=calls, value=10**9)
            project.default_product = free.key
            project.save(update_fields=["default_product"])
        made += [project, secret]
    return made[0], made[1], made[2], made[3]


# --- usage ----------------------------------------------------------------------------------------------------


def _usage(env: dict[str, str], a_secret: str, b_secret: str) -> dict[str, Any]:
    import requests

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with _gunicorn(env, port):
        run = time.time_ns()
        b_rate, a_rate = RATES["usage"]
        local = threading.local()

        def post(secret: str, event_id: str) -> tuple[int, float]:
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            body = {"id": event_id, "customer": "c1", "feature": "calls", "quantity": 1}
            started = time.perf_counter()
            response = session.post(
                f"{base}/api/v1/usage", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=30
            )
            return response.status_code, time.perf_counter() - started

        def phase(name: str, burst: bool) -> tuple[list[float], dict[int, int]]:
            b_latencies: list[float] = []
            a_statuses: dict[int, int] = {}

            def b_call(i: int) -> None:
                status, took = post(b_secret, f"{run}-{name}-b{i}")
                assert status in (200, 201), status
                b_latencies.append(took)

            def a_call(i: int) -> None:
                status, _ = post(a_secret, f"{run}-{name}-a{i}")
                a_statuses[status] = a_statuses.get(status, 0) + 1

            loads = [(b_rate, b_call)] + ([(a_rate * 10, a_call)] if burst else [(a_rate, a_call)])
            _together(*loads)
            return b_latencies, a_statuses

        phase("warm", False)
        phase("warmburst", True)  # both paths warm before anything counts (as for Stripe events)
        rounds: list[tuple[list[float], list[float]]] = []
        a_statuses: dict[int, int] = {}
        for r in range(ROUNDS):
            alone, _ = phase(f"alone{r}", False)
            during, statuses = phase(f"burst{r}", True)
            rounds.append((alone, during))
            for status, n in statuses.items():
                a_statuses[status] = a_statuses.get(status, 0) + n
    return {"rounds": rounds, "a": a_statuses}


# --- Stripe events ---------------------------------------------------------------------------------------------


def _stripe(env: dict[str, str], a: Any, b: Any) -> dict[str, Any]:
    import requests

    from webhooks.models import StripeEvent

    run = time.time_ns()
    b_rate, a_rate = RATES["stripe"]
    secrets = {}
    for project in (a, b):
        secrets[project.pk] = f"whsec_bench_fair_{project.pk}"
        project.stripe_webhook_secret = secrets[project.pk]
        project.save(update_fields=["stripe_webhook_secret"])
    # B's events' time from the send to storing, storing to the start of processing, start to done, by phase.
    sent: dict[str, float] = {}
    waits: dict[str, list[tuple[float, float, float]]] = {}
    local = threading.local()
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def post(project: Any, event_id: str, customer: str) -> None:
        body = json.dumps(
            {
                "id": event_id,
                "object": "event",
                "type": "customer.subscription.updated",
                "created": int(time.time()),
                "data": {"object": {"id": f"sub_{event_id}", "object": "subscription", "customer": customer}},
            }
        ).encode()
        stamp = int(time.time())
        digest = hmac.new(
            secrets[project.pk].encode(), f"{stamp}.".encode() + body, hashlib.sha256
        ).hexdigest()
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        sent[event_id] = time.time()
        response = session.post(
            f"{base}/webhooks/stripe/{project.pk}",
            data=body,
            headers={"Stripe-Signature": f"t={stamp},v1={digest}", "Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 200, (response.status_code, response.text[:200])

    def phase(name: str, burst: bool) -> list[float]:
        prefix = f"evt_fair_{run}_{name}_"

        def b_call(i: int) -> None:
            post(b, f"{prefix}b{i}", f"cus_{run}_{name}_b{i % 5}")

        def a_call(i: int) -> None:
            post(a, f"{prefix}a{i}", f"cus_{run}_{name}_a{i}")

        _together((b_rate, b_call), (a_rate * 10 if burst else a_rate, a_call))
        deadline = time.monotonic() + 300
        pending = StripeEvent.objects.filter(
            stripe_event_id__startswith=prefix, status__in=("received", "processing")
        )
        while pending.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        rows = StripeEvent.objects.filter(
            stripe_event_id__startswith=f"{prefix}b", processed_at__isnull=False
        ).values_list("stripe_event_id", "received_at", "processing_started_at", "processed_at")
        waits[name] = [
            (
                received.timestamp() - sent[event_id],
                (started - received).total_seconds(),
                (done - started).total_seconds(),
            )
            for event_id, received, started, done in rows
        ]
        return [done.timestamp() - sent[event_id] for event_id, _, _, done in rows]

    with _gunicorn(env, port), _worker(env):
        time.sleep(5)  # the worker's processes start
        # Both paths warm before anything counts (with the usual rate only, the first round's B alone had a p99 of
        # ~100 ms, every later one ~20 ms: a flattering ratio).
        phase("warm", False)
        phase("warmburst", True)
        rounds = [(phase(f"alone{r}", False), phase(f"burst{r}", True)) for r in range(ROUNDS)]
    split = {
        side: [w for name, parts in waits.items() if name.startswith(side) for w in parts]
        for side in ("alone", "burst")
    }
    return {
        "rounds": rounds,
        "split": {
            side: tuple(_p99([p[i] for p in parts]) for i in range(3)) for side, parts in split.items()
        },
    }


# --- deliveries ------------------------------------------------------------------------------------------------


class _Endpoint:
    """A tenant's endpoint on a loopback port that answers after `delay` seconds, recording when each object's
    delivery arrived."""

    def __init__(self, delay: float) -> None:
        self.arrived: dict[str, float] = {}
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                endpoint.arrived.setdefault(body["data"]["object"]["id"], time.perf_counter())
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _deliveries(env: dict[str, str], a: Any, b: Any) -> dict[str, Any]:
    from django.db import connection, transaction

    from events.models import Delivery, WebhookEndpoint
    from events.services.record import event_record

    slow, fast = _Endpoint(SLOW_SECONDS), _Endpoint(0.0)
    WebhookEndpoint.objects.create(project=a, url=slow.url, events=["*"], secret="whsec_bench_a")
    WebhookEndpoint.objects.create(project=b, url=fast.url, events=["*"], secret="whsec_bench_b")
    b_rate, a_rate = RATES["deliveries"]
    run = time.time_ns()
    recorded: dict[str, float] = {}

    def record(project: Any, object_id: str) -> None:
        with transaction.atomic():
            event_record(
                project=project, type="payment.succeeded", data_object={"id": object_id, "object": "payment"}
            )
        recorded[object_id] = time.perf_counter()  # committed: its deliveries are queued (or wait their turn)
        connection.close()

    def phase(name: str, burst: bool) -> list[float]:
        def b_call(i: int) -> None:
            record(b, f"pay_{run}_{name}_b{i}")

        def a_call(i: int) -> None:
            record(a, f"pay_{run}_{name}_a{i}")

        _together((b_rate, b_call), (a_rate * 10 if burst else a_rate, a_call))
        mine = [k for k in recorded if f"_{name}_b" in k]
        deadline = time.monotonic() + 60
        while any(k not in fast.arrived for k in mine) and time.monotonic() < deadline:
            time.sleep(0.05)
        return [fast.arrived[k] - recorded[k] for k in mine if k in fast.arrived]

    try:
        with _worker(env):
            time.sleep(5)
            phase("warm", False)
            phase("warmburst", True)  # both paths warm; every alone round then follows a burst alike
            Delivery.objects.filter(project=a, status="pending").update(status="failed")
            time.sleep(SLOW_SECONDS + 0.5)
            rounds: list[tuple[list[float], list[float]]] = []
            waiting: list[int] = []
            for r in range(ROUNDS):
                alone = phase(f"alone{r}", False)
                during = phase(f"burst{r}", True)
                rounds.append((alone, during))
                # A's burst left a backlog at its slow endpoint (minutes of it): the next round's "alone" must
                # not inherit it (given up: benchmark housekeeping only).
                waiting.append(Delivery.objects.filter(project=a, status="pending").update(status="failed"))
                time.sleep(SLOW_SECONDS + 0.5)  # the deliveries being sent end
    finally:
        slow.stop()
        fast.stop()
    return {"rounds": rounds, "a_waiting": waiting}


def run() -> None:
    import redis
    from django.conf import settings
    from django.db import connection

    from config.celery import app

    redis_url = os.environ.get("REDIS_URL", "")
    if connection.vendor != "postgresql" or not redis_url:
        print("\nFairness benchmark skipped: it needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL).")
        return
    redis.Redis.from_url(redis_url).flushdb()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.broker_url = redis_url
    app.conf.task_always_eager = False
    app._after_fork()
    env = _env(os.environ["DATABASE_URL"], redis_url)
    a, a_secret, b, b_secret = _tenants()
    load_before = os.getloadavg()

    kinds = {"usage": _usage, "stripe": _stripe, "deliveries": _deliveries}
    # BENCH_FAIRNESS_KINDS=stripe,usage: only these kinds (all by default).
    only = [k.strip() for k in os.environ.get("BENCH_FAIRNESS_KINDS", "").split(",") if k.strip()]
    results = {
        kind: measure(env, a_secret, b_secret) if kind == "usage" else measure(env, a, b)  # type: ignore[operator]
        for kind, measure in kinds.items()
        if not only or kind in only
    }
    print(
        "\nPer-tenant fairness: tenant B's p99 alone vs while tenant A bursts at 10× its usual rate (target ≤ 1.2×)"
    )
    print(f"load average (1 min) before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(
        f"{'kind':<14}{'B rate/s':>9}{'A burst/s':>10}{'B p99 alone':>13}{'B p99 burst':>13}{'ratio':>8}  notes"
    )
    for kind, result in results.items():
        b_rate, a_rate = RATES[kind]
        rounds = result["rounds"]
        ratios = [_p99(during) / _p99(alone) for alone, during in rounds]
        alone = _p99([x for pair in rounds for x in pair[0]])
        during = _p99([x for pair in rounds for x in pair[1]])
        notes = "rounds " + ", ".join(
            f"{_p99(a_):.0f}/{_p99(d_):.0f}ms {r:.2f}×" for (a_, d_), r in zip(rounds, ratios, strict=True)
        )
        notes += f"; median round {statistics.median(ratios):.2f}×"
        notes += f"; B samples {sum(len(a_) for a_, _ in rounds)}/{sum(len(d_) for _, d_ in rounds)}"
        if kind == "usage":
            notes += f"; A's answers {dict(sorted(result['a'].items()))}"
        if kind == "stripe":
            alone_parts, burst_parts = result["split"].values()
            notes += "; B's p99 " + ", ".join(
                f"{part} {alone_:.0f}/{burst_:.0f}ms"
                for part, alone_, burst_ in zip(
                    ("send→stored", "stored→start", "start→done"), alone_parts, burst_parts, strict=True
                )
            )
        if kind == "deliveries":
            notes += f"; A's deliveries left waiting after each burst {result['a_waiting']}"
        print(
            f"{kind:<14}{b_rate:>9}{a_rate * 10:>10}{alone:>11.1f}ms{during:>11.1f}ms{during / alone:>7.2f}×  {notes}"
        )
