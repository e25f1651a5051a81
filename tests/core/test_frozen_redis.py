"""A frozen Redis (SIGSTOP: the TCP connection stays open and nothing answers) does not hang a write: the
Stripe intake stores the event and answers 200 within the broker's short timeouts, and the beat sweep queues the
event once Redis is back. A real redis-server of the test's own is frozen; nothing is mocked."""

import os
import shutil
import signal
import subprocess
import threading
import time

import pytest
import redis
import stripe
from django.db import connection
from django.test import Client, override_settings

from tests.webhooks.workers import free_port
from webhooks.models import StripeEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
SECRET = "whsec_test_frozen_redis"


def _private_redis(port: int | None = None, data_dir: str | None = None):
    """A redis-server of the test's own; with `data_dir`, persisting every write (AOF, fsync always), so that a
    restart brings back what it held, as a production Redis with persistence does."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = port or free_port()
    persistence = (
        ["--appendonly", "yes", "--appendfsync", "always", "--dir", data_dir]
        if data_dir
        else ["--appendonly", "no"]
    )
    server = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", *persistence, "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            return server, url
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.05)


@pytest.fixture
def frozen_broker():
    """A private redis-server as the Celery broker, frozen with SIGSTOP (thawed and stopped after)."""
    from config.celery import app as celery_app

    server, url = _private_redis()
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


@pytest.fixture
def private_cache(settings, tmp_path):
    """The shared cache on a private, persisting redis-server (frozen, thawed or restarted by the test), every
    process-local cache off (1 s by default) so what is asserted is the shared cache's answer."""
    from django.core.cache import caches

    from projects.authentication import local_cache

    server, url = _private_redis(data_dir=str(tmp_path))
    holder = {"server": server, "url": url, "dir": str(tmp_path)}
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    settings.AUTH_LOCAL_CACHE_SECONDS = 0
    settings.CACHE_EPOCH_CHECK_SECONDS = 0
    local_cache.clear()
    try:
        yield holder
    finally:
        server = holder["server"]
        if server.poll() is None:
            os.kill(server.pid, signal.SIGCONT)
            server.terminate()
            server.wait(10)
        caches["default"].close()


def test_a_key_revoked_while_redis_is_frozen_stays_revoked_when_redis_returns(private_cache, api, tenant_a):
    """Redis frozen (SIGSTOP): the invalidation times out, so the epoch is bumped. (The DEL itself may still be
    applied when Redis wakes up and reads its socket; the epoch does not count on that.)"""
    from core.actors import Actor
    from core.models import CacheEpoch
    from projects.services import api_key_revoke

    server = private_cache["server"]
    assert api.get("/api/v1/project", key=tenant_a.key).status_code == 200  # now cached in Redis
    os.kill(server.pid, signal.SIGSTOP)
    api_key_revoke(actor=Actor.system("test"), api_key=tenant_a.api_key, reason="leaked")
    os.kill(server.pid, signal.SIGCONT)

    assert api.get("/api/v1/project", key=tenant_a.key).status_code == 401
    assert CacheEpoch.objects.get().value == 1


def test_a_key_revoked_while_redis_is_down_stays_revoked_when_redis_restarts_with_its_data(
    private_cache, api, tenant_a
):
    """Redis stopped (a restart, a failover): the invalidation is refused and lost, and Redis comes back from its
    persisted data with the cached "valid" answer in it. The epoch bumped in the database turns that answer down."""
    from core.actors import Actor
    from core.models import CacheEpoch
    from projects.services import api_key_revoke

    assert api.get("/api/v1/project", key=tenant_a.key).status_code == 200
    server = private_cache["server"]
    server.terminate()
    server.wait(10)
    api_key_revoke(actor=Actor.system("test"), api_key=tenant_a.api_key, reason="leaked")
    port = int(private_cache["url"].rsplit(":", 1)[1].split("/")[0])
    private_cache["server"], _ = _private_redis(port=port, data_dir=private_cache["dir"])
    assert len(redis.Redis.from_url(private_cache["url"]).keys("*auth:v1:*")) == 1  # the stale answer is back

    assert api.get("/api/v1/project", key=tenant_a.key).status_code == 401
    assert CacheEpoch.objects.get().value == 1


def test_a_grant_ended_while_redis_is_down_is_not_answered_again_when_redis_returns(
    private_cache, api, tenant_a
):
    """The entitlement answer is cached under version keys that a change bumps on commit. With Redis down the
    bump is lost, and Redis comes back with the old versions and the old answer: the epoch turns it down."""
    from core.actors import Actor
    from entitlements.models import Grant
    from entitlements.services import grant_delete

    api.post("/api/v1/features", {"key": "sso", "name": "SSO", "type": "boolean"}, key=tenant_a.key)
    api.post(
        "/api/v1/entitlements/grants",
        {"customer": "u1", "feature": "sso", "reason": "trial"},
        key=tenant_a.key,
    )
    check = "/api/v1/entitlements/check?customer=u1&feature=sso"
    assert api.request("GET", check, key=tenant_a.key).json()["allowed"] is True  # now cached in Redis
    assert api.request("GET", check, key=tenant_a.key).json()["allowed"] is True  # and served from it
    server = private_cache["server"]
    server.terminate()
    server.wait(10)
    grant_delete(grant=Grant.objects.get(), actor=Actor.system("test"), reason="ended")
    port = int(private_cache["url"].rsplit(":", 1)[1].split("/")[0])
    private_cache["server"], _ = _private_redis(port=port, data_dir=private_cache["dir"])

    answer = api.request("GET", check, key=tenant_a.key).json()
    assert answer["allowed"] is False, answer
