"""End to end with a real Celery worker on the real broker (not eager): Stripe's webhook is stored by the
intake, processed by the worker, and the tenant's endpoint receives the signed event from the worker.

Needs PostgreSQL (the worker is another process reading the same test database), Redis (REDIS_URL) and the
broker's own Redis database, named in full (TOLLGATE_TEST_BROKER_URL, emptied before and after:
tests/redis_databases.py).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from tollgate_client.webhooks import construct_event

from billing.models import Payment
from config.celery import app as celery_app
from tests.catalog import make_catalog
from tests.e2e.convergence import broker_url
from tests.events.receiver import Receiver
from tests.redis_databases import BROKER_NEEDED, flush
from webhooks.models import StripeEvent

ROOT = Path(__file__).resolve().parents[2]
OK = "https://app.example.com/ok"


def _broker_url() -> str:
    url = broker_url()  # as given (TOLLGATE_TEST_BROKER_URL): parallel suites keep apart
    if url is None:
        pytest.skip(BROKER_NEEDED)
    return url


def _use_broker(*, eager: bool, url: str) -> None:
    """Points this process's Celery producer at `url` (connection pools are rebuilt, as after a fork)."""
    celery_app.conf.task_always_eager = eager
    celery_app.conf.broker_url = url
    celery_app._after_fork()


@pytest.fixture
def real_worker(db):
    broker = _broker_url()
    try:
        flush(broker)
    except redis.RedisError:
        pytest.skip("Redis is not reachable")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{connection.settings_dict['USER']}@{connection.settings_dict['HOST'] or '127.0.0.1'}:"
        f"{connection.settings_dict['PORT'] or 5432}/{connection.settings_dict['NAME']}",
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
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
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    previous = (celery_app.conf.task_always_eager, celery_app.conf.broker_url)
    _use_broker(eager=False, url=broker)
    try:
        yield worker
    finally:
        _use_broker(eager=previous[0], url=previous[1])
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_webhook_processed_and_delivered_by_a_real_worker(
    api, tenant_a, stripe_sdk, stripe_emulator, stripe_webhooks, real_worker
):
    assert not settings.CELERY_TASK_ALWAYS_EAGER or celery_app.conf.task_always_eager is False
    make_catalog(tenant_a.project)
    receiver = Receiver().start()
    try:
        endpoint = api.post(
            "/api/v1/webhook_endpoints",
            {"url": receiver.url, "events": ["payment.succeeded"]},
            key=tenant_a.key,
        ).json()
        created = api.post(
            "/api/v1/payments",
            {
                "customer": "user-1",
                "price": "credits-1000",
                "flow": "checkout",
                "success_url": OK,
                "cancel_url": OK,
            },
            key=tenant_a.key,
        ).json()
        stripe_emulator.handle(
            "POST",
            f"/_emulator/checkout/sessions/{created['stripe_checkout_session_id']}/complete",
            query="",
            body=b"card=4242424242424242",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        stripe_webhooks.deliver()  # the intake runs here; processing is queued to the broker

        assert _wait_for(lambda: Payment.objects.get(pk=created["id"]).status == "succeeded"), (
            real_worker.stderr.read1().decode()
            if real_worker.poll() is not None
            else "worker did not process the event"
        )
        assert _wait_for(
            lambda: StripeEvent.objects.get(type="checkout.session.completed").status == "processed"
        )
        assert _wait_for(lambda: len(receiver.received) == 1)
        event = construct_event(
            receiver.received[0].body, receiver.received[0].headers["Tollgate-Signature"], endpoint["secret"]
        )
        assert event.type == "payment.succeeded"
        assert event.object["id"] == created["id"]
    finally:
        receiver.stop()
