"""The exactly-once property (issue #27, point 3): whatever fails around a write — Stripe unreachable before it
acted, Stripe's answer lost once or past the SDK's retries, our web process killed after Stripe acted and
before we committed, our answer lost after we committed, the web process killed at any moment — a tenant or an
operator who retries as docs/integration.md says (same request, same `Idempotency-Key`, until an answer that is
not 5xx, 429 or `idempotency_key_in_use`) gets what the completed write answers, and once the workers settled
and the product's repair ran: one Stripe effect per intended write, every local row equal to Stripe's
(payments, refunds, subscriptions, invoices and a draft's lines, credit notes, credits), entitlements equal to what that state
implies, the revenue figures equal to Stripe's, and each correction announced once.

Each seed is one random sequence of 6–12 writes over 2–3 customers (`tests/e2e/exactly_once.py` has the
machinery and says how each fault is made): tenant refunds (full and partial) and operator refunds (the back
office's action, logged in with a session and CSRF) of paid payments, `POST /subscriptions` on a saved card,
cancel now, cancel at period end, resume, quantity changes, moves between two versions of the plan (set up by a
draft that repriced it: each move moves the subscription's Stripe price too), credit notes of an open invoice
(billed by invoice at Stripe in setup), marking it uncollectible and its void, lines added to and removed from a
draft invoice (started at Stripe in setup) — each with one fault drawn from `exactly_once.FAULTS`, or none. Real processes: gunicorn for the web, Celery workers, the emulator's HTTP server
behind a fault-injecting proxy; nothing of ours is mocked.

`TOLLGATE_EXACTLY_ONCE_SEEDS` (default 20: seeds 0…19; `make soak-writes` runs 500; "7,12" runs those two),
`TOLLGATE_EXACTLY_ONCE_FAULTS` (`none`: the same writes without faults — the harness's own check; or a
comma-separated list of fault names), `TOLLGATE_EXACTLY_ONCE_BACK_TO_BACK=1` (the next write does not wait for
the workers to apply the last one's webhooks: also exposes the mirror's race with a write made right after
another), `TOLLGATE_EXACTLY_ONCE_REPORT_DIR` (write every seed's report there),
`TOLLGATE_CONVERGENCE_WORKERS` / `TOLLGATE_CONVERGENCE_WAIT` (as for the convergence test),
`TOLLGATE_TEST_PORTS` (e.g. "18400-18499": the ports the web process and the proxies may take). Needs PostgreSQL
(DATABASE_URL), Redis (REDIS_URL) and the workers' broker, a Redis database of its own named in full
(`TOLLGATE_TEST_BROKER_URL`, emptied before and after: tests/redis_databases.py): the web process and the workers
are other processes on the test database.
"""

import contextlib
import io
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from config.celery import app as celery_app
from stripe_emulator import Emulator
from stripe_emulator.server import serve_in_thread
from tests.e2e import convergence as cv
from tests.e2e import exactly_once as eo
from tests.redis_databases import BROKER_NEEDED, flush

# Stripe retries a failed webhook for days; these delays outlast a restart of the web process (~2 s).
WEBHOOK_RETRY_DELAYS = (0.2, 1.0, 2.0, 4.0, 8.0, 15.0)


def _use_broker(*, eager: bool, url: str) -> None:
    """Points this process's Celery producer at `url` (connection pools are rebuilt, as after a fork)."""
    celery_app.conf.task_always_eager = eager
    celery_app.conf.broker_url = url
    celery_app._after_fork()


@pytest.fixture(scope="module")
def processes(django_db_setup: None) -> Iterator[eo.Processes]:
    """Started once per module: the emulator's HTTP server (each test plugs its own emulator in), the Stripe
    fault proxy in front of it, the web process behind the tenant proxy, and the workers."""
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL: the web process and the workers are other processes on the test database"
        )
    broker = cv.broker_url()
    if broker is None:
        pytest.skip(BROKER_NEEDED)
    try:
        flush(broker)
    except redis.RedisError:
        pytest.skip("Redis is not reachable")
    directory = Path(tempfile.mkdtemp(prefix="exactly-once-"))
    (directory / "clock").write_text("0")  # the workers' clock offset: this test never moves time
    idle = Emulator(webhook_mode="manual")
    server = serve_in_thread(idle)
    taken: set[int] = set()
    settings = connection.settings_dict
    database = f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"
    base_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database,
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    web_port = eo.bind_port(taken)
    web: eo.WebProcess | None = None
    stripe = eo.StripeFaultProxy(
        upstream=server.url, port=eo.bind_port(taken), on_kill=lambda: web and web.kill()
    )
    web = eo.WebProcess(
        env={
            **base_env,
            "STRIPE_API_BASE": stripe.url,
            "STRIPE_MAX_NETWORK_RETRIES": "2",  # production's
            # A retry after a killed process may take its key over after 3 s (production: 300 s).
            "DJANGO_SETTINGS_MODULE": "tests.e2e.exactly_once_settings",
        },
        port=web_port,
        log=directory / "web.log",
    )
    front = eo.TenantProxy(upstream=web.url, port=eo.bind_port(taken))
    # The workers reach the emulator directly: the faults are the web process's.
    workers = cv.Workers(
        count=cv.worker_count(),
        env={**base_env, cv.STRIPE_BASE_ENV: server.url, cv.CLOCK_FILE_ENV: str(directory / "clock")},
        log_dir=directory,
    )
    previous = (celery_app.conf.task_always_eager, celery_app.conf.broker_url)
    _use_broker(eager=False, url=broker)
    stripe.start()
    front.start()
    workers.start()
    try:
        web.start()
        yield eo.Processes(web=web, stripe=stripe, front=front, workers=workers, server=server, idle=idle)
    finally:
        _use_broker(eager=previous[0], url=previous[1])
        web.stop()
        workers.stop()
        front.stop()
        stripe.stop()
        server.shutdown()
        idle.close()


@pytest.fixture
def runner(
    processes: eo.Processes,
    stripe_emulator: Emulator,
    tenant_a: Any,
    catalog: Any,
    api: Any,
    stripe_sdk: Any,
) -> Iterator[eo.Runner]:
    processes.server.emulator = (
        stripe_emulator  # the web process and the workers reach this test's Stripe from now on
    )
    # Webhooks go out over HTTP to the web process as they happen, retried while it is down.
    stripe_emulator.webhooks.mode = "background"
    stripe_emulator.webhooks.retry_delays = WEBHOOK_RETRY_DELAYS
    made = eo.Runner(
        processes=processes,
        emulator=stripe_emulator,
        sdk=stripe_sdk(),
        project=tenant_a.project,
        key=tenant_a.key,
        api=api,
    )
    try:
        call_command("stripe_setup_webhooks", "--url", processes.web.url, stdout=io.StringIO())
        cv.configure_features(api, tenant_a.key)
        get_user_model().objects.create_superuser(eo.OPERATOR[0], password=eo.OPERATOR[1])
        yield made
    finally:
        with contextlib.suppress(
            AssertionError
        ):  # the database is emptied next: let what is in flight finish
            made.settle("teardown")
        made.close()
        stripe_emulator.webhooks.mode = "manual"
        processes.server.emulator = processes.idle


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("seed", eo.seeds())
def test_every_write_has_one_effect_whatever_fails(seed: int, runner: eo.Runner, catalog: Any) -> None:
    sequence = eo.plan_sequence(seed, eo.allowed_faults())
    started = time.monotonic()
    checks: eo.Checks | None = None
    error = ""
    try:
        runner.setup(sequence)
        runner.run(sequence)
        runner.settle("after the writes")
        runner.repair()
        checks = eo.Checks(runner=runner, sequence=sequence, catalog=catalog)
        checks.run()
    except AssertionError as exc:  # the harness could not finish (setup refused, the workers did not drain)
        error = str(exc)
    report = eo.render(
        sequence=sequence,
        runner=runner,
        checks=checks,
        timing=f"{time.monotonic() - started:.1f} s",
        error=error,
    )
    reports = os.environ.get("TOLLGATE_EXACTLY_ONCE_REPORT_DIR")
    if reports:  # every seed's report, passed or not (`make soak-writes` keeps them)
        Path(reports).mkdir(parents=True, exist_ok=True)
        (Path(reports) / f"seed-{seed}.txt").write_text(report + "\n")
    failed = error or (checks is not None and checks.mismatches) or any(w.problems for w in sequence.writes)
    assert not failed, report
