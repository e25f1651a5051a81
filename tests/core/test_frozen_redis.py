"""A frozen Redis (SIGSTOP: the TCP connection stays open and nothing answers) does not hang a write: the
Stripe intake stores the event and answers 200 within the broker's short timeouts, and the beat sweep queues the
event once Redis is back. A real redis-server of the test's own is frozen; nothing is mocked."""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
import redis
import stripe
from django.db import connection
from django.test import Client, override_settings

from webhooks.models import StripeEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
SECRET = "whsec_test_frozen_redis"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def frozen_broker():
    """A private redis-server as the Celery broker, frozen with SIGSTOP (thawed and stopped after)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    from config.celery import app as celery_app

    port = _free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.05)
    previous = (celery_app.conf.task_always_eager, celery_app.conf.broker_url)
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_url = url
    celery_app._after_fork()  # connection pools rebuilt for the new broker
    try:
        celery_app.connection_for_write().ensure_connection(max_retries=1)  # connected before the freeze
        os.kill(server.pid, signal.SIGSTOP)
        yield server
    finally:
        os.kill(server.pid, signal.SIGCONT)
        server.terminate()
        server.wait(10)
        celery_app.conf.task_always_eager, celery_app.conf.broker_url = previous
        celery_app._after_fork()


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET, CELERY_TASK_ALWAYS_EAGER=False)
def test_the_stripe_intake_answers_and_stores_while_the_broker_is_frozen(frozen_broker):
    body = (
        '{"id": "evt_frozen", "object": "event", "type": "customer.updated", "created": 1800000000, '
        '"api_version": "2026-10-28.endive", "data": {"object": {"id": "cus_x", "object": "customer"}}}'
    )
    header = stripe.WebhookSignature.generate_signature_header(body, SECRET)
    answers: list[int] = []

    def post() -> None:
        response = Client().post(
            "/webhooks/stripe",
            data=body,
            content_type="application/json",
            headers={"Stripe-Signature": header},
        )
        answers.append(response.status_code)
        connection.close()  # this thread's own session

    sender = threading.Thread(target=post)
    sender.start()
    sender.join(15)  # a hang, not a speed measure: without broker timeouts this waits for TCP to give up
    assert not sender.is_alive(), "the intake hung on the frozen broker"
    assert answers == [200]
    assert StripeEvent.objects.get(stripe_event_id="evt_frozen").status == StripeEvent.Status.RECEIVED
