"""The convergence property (issue #14): whatever Stripe's webhooks do — arrive late, twice, three times, out of
order, or never; and whatever a worker that dies or a database crash leaves (an event applied whose outcome
was lost, applied again after later ones) — Tollgate's workers plus the repair tools of docs/operations.md ("After an outage") end with
every subscription, invoice, payment, credit balance and entitlement equal to what Stripe holds, and with no
tenant event or credit grant made twice.

Each seed is one scenario (`random.Random(seed)`, see `tests/e2e/convergence.py`): subscription checkouts,
one-time credit packs, upgrades with proration, a renewal by moving Stripe's clock, failed renewals on a card
that fails when charged, refunds, disputes and cancellations at period end, driven through Tollgate's API with a
project key and the emulator's customer-side controls. Real Celery workers (other processes, reaching the
emulator over HTTP) apply the events.

`TOLLGATE_CONVERGENCE_SEEDS` (default 20: seeds 0…19; `make soak` runs 500; "7,12" runs those two),
`TOLLGATE_CONVERGENCE_WORKERS` (default 2), `TOLLGATE_CONVERGENCE_WAIT` (seconds the workers get to drain the
inbox, default 60), `TOLLGATE_CONVERGENCE_REPORT_DIR` (write every seed's report there),
`TOLLGATE_CONVERGENCE_SKIP_REPAIR=1` (no repair tools: shows what the webhooks alone leave wrong). Needs
PostgreSQL (DATABASE_URL), Redis (REDIS_URL) and the workers' broker, a Redis database of its own named in full
(`TOLLGATE_TEST_BROKER_URL`, emptied before and after: tests/redis_databases.py).
"""

import contextlib
import io
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from config.celery import app as celery_app
from stripe_emulator import Emulator
from stripe_emulator.server import EmulatorServer, serve_in_thread
from tests.catalog import price_create
from tests.e2e import convergence as cv
from tests.redis_databases import BROKER_NEEDED, flush


@dataclass
class Environment:
    server: EmulatorServer
    idle_emulator: Emulator
    workers: cv.Workers
    clock_file: Path


def _use_broker(*, eager: bool, url: str) -> None:
    """Points this process's Celery producer at `url` (connection pools are rebuilt, as after a fork)."""
    celery_app.conf.task_always_eager = eager
    celery_app.conf.broker_url = url
    celery_app._after_fork()


@pytest.fixture(scope="module")
def environment(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    """Started once per module: the emulator's HTTP server (each test plugs its own emulator in) and the
    workers. Each transactional test empties the database afterwards; the workers just see new rows."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the workers are other processes on the test database")
    broker = cv.broker_url()
    if broker is None:
        pytest.skip(BROKER_NEEDED)
    try:
        flush(broker)
    except redis.RedisError:
        pytest.skip("Redis is not reachable")
    directory = tmp_path_factory.mktemp("convergence")
    clock_file = directory / "clock"
    clock_file.write_text("0")
    idle = Emulator(webhook_mode="manual")
    server = serve_in_thread(idle)
    settings = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:"
        f"{settings['PORT'] or 5432}/{settings['NAME']}",
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        cv.STRIPE_BASE_ENV: server.url,
        cv.CLOCK_FILE_ENV: str(clock_file),
    }
    workers = cv.Workers(count=cv.worker_count(), env=env, log_dir=directory)
    previous = (celery_app.conf.task_always_eager, celery_app.conf.broker_url)
    _use_broker(eager=False, url=broker)
    workers.start()
    try:
        yield Environment(server=server, idle_emulator=idle, workers=workers, clock_file=clock_file)
    finally:
        _use_broker(eager=previous[0], url=previous[1])
        workers.stop()
        server.shutdown()
        idle.close()


@dataclass
class Result:
    ok: bool
    report: str
    seconds: float
    scenario: cv.Scenario


class Harness:
    def __init__(
        self, *, env: Environment, emulator: Emulator, tenant: Any, catalog: Any, api: Any, sdk: Any
    ):
        self.env = env
        self.emulator = emulator
        self.tenant = tenant
        self.catalog = catalog
        self.api = api
        self.sdk = sdk
        self.clock = cv.SharedClock(env.clock_file)
        self.capture = cv.Capture(emulator)
        self.intake = cv.Intake()
        self.timings: list[str] = []
        self._phase_started = time.monotonic()

    def settle(self, what: str) -> None:
        if cv.settle_as_in_production(self.env.workers, cv.wait_seconds(), what):
            self.timings.append(f"{what}: beat's sweep played")

    def phase(self, name: str) -> None:
        now = time.monotonic()
        self.timings.append(f"{name} {now - self._phase_started:.1f} s")
        self._phase_started = now

    def run(self, seed: int) -> Result:
        started = self._phase_started = time.monotonic()
        scenario = cv.plan_scenario(seed)
        since = timezone.now() - timedelta(seconds=1)  # the "outage" starts with the scenario
        driver = cv.Driver(
            api=self.api,
            project=self.tenant.project,
            key=self.tenant.key,
            emulator=self.emulator,
            sdk=self.sdk,
            clock=self.clock,
            capture=self.capture,
            intake=self.intake,
            settle=self.settle,
        )
        repaired = "(skipped: TOLLGATE_CONVERGENCE_SKIP_REPAIR)"
        try:
            driver.run(scenario)
            self.phase("scenario")
            self.capture.collect()
            deliveries = cv.redeliver(
                scenario, self.capture, self.intake, delivered_before=driver.delivered_upto
            )
            self.settle("after the shuffled redelivery")
            self.phase("redelivery")
            lost = cv.lose_outcomes(scenario, self.settle)
            self.phase(f"{lost} lost outcomes applied again")
            if not os.environ.get("TOLLGATE_CONVERGENCE_SKIP_REPAIR"):  # to see what webhooks alone leave
                repaired = cv.repair(since=since, settle=self.settle)
                self.phase("repair")
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}: {scenario.describe()}\n{exc}") from exc
        comparison = self.compare(scenario)
        self.phase("comparison")
        report = cv.render(
            seed=seed,
            scenario=scenario,
            mismatches=comparison.mismatches,
            checked=", ".join(f"{count} {kind}" for kind, count in sorted(comparison.checked.items())),
            errors=driver.errors,
            deliveries=deliveries,
            refused=self.intake.refused,
            repair_output=repaired,
            timing=f"{time.monotonic() - started:.1f} s ({', '.join(self.timings)})",
        )
        ok = not comparison.mismatches and not driver.errors and not self.intake.refused
        return Result(ok=ok, report=report, seconds=time.monotonic() - started, scenario=scenario)

    def compare(self, scenario: cv.Scenario) -> cv.Comparison:
        """Every mirror of the scenario's customers against Stripe's objects, read now through the SDK."""
        customers = [
            c.stripe_customer_id
            for c in self.tenant.project.customers.filter(external_id__in=list(scenario.plans))
            if c.stripe_customer_id
        ]
        truth = cv.Truth(self.sdk, customers)
        truth.now = self.emulator.clock.now()
        comparison = cv.Comparison(
            project=self.tenant.project, truth=truth, api=self.api, key=self.tenant.key, scenario=scenario
        )
        comparison.run(
            pro_product=self.catalog.pro.stripe_product_id,
            credit_price_amount=int(
                self.sdk.v1.prices.retrieve(self.catalog.credit_pack.stripe_price_id).unit_amount
            ),
        )
        return comparison


@pytest.fixture
def harness(
    environment: Environment,
    stripe_emulator: Emulator,
    tenant_a: Any,
    catalog: Any,
    api: Any,
    stripe_sdk: Any,
) -> Iterator[Harness]:
    # The workers' STRIPE_API_BASE reaches this test's Stripe from now on.
    environment.server.emulator = stripe_emulator
    made = Harness(
        env=environment, emulator=stripe_emulator, tenant=tenant_a, catalog=catalog, api=api, sdk=stripe_sdk()
    )
    made.clock.follow(stripe_emulator)
    try:
        call_command("stripe_setup_webhooks", "--url", "http://testserver", stdout=io.StringIO())
        price_create(catalog.pro, "pro-plus-monthly", 6000, interval="month")
        cv.configure_features(api, tenant_a.key)
        yield made
    finally:
        with contextlib.suppress(AssertionError):  # the database is emptied next: let the workers finish
            made.settle("teardown")
        made.clock.stop()
        environment.server.emulator = environment.idle_emulator


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("seed", cv.seeds())
def test_tollgate_converges_on_stripe_whatever_the_webhooks_do(seed: int, harness: Harness) -> None:
    reports = os.environ.get("TOLLGATE_CONVERGENCE_REPORT_DIR")
    try:
        result = harness.run(seed)
    except AssertionError as exc:  # the workers did not drain the inbox
        if reports:
            Path(reports).mkdir(parents=True, exist_ok=True)
            (Path(reports) / f"seed-{seed}.txt").write_text(f"{exc}\n")
        raise
    if reports:  # every seed's report, passed or not (`make soak` keeps them)
        Path(reports).mkdir(parents=True, exist_ok=True)
        (Path(reports) / f"seed-{seed}.txt").write_text(result.report + "\n")
    assert result.ok, result.report
