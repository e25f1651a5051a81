"""A frozen Redis (SIGSTOP: the TCP connection stays open and nothing answers) does not hang a write: the
Stripe intake stores the event and answers 200 within the broker's short timeouts, and the beat sweep queues the
event once Redis is back. A real redis-server of the test's own is frozen; nothing is mocked."""

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from datetime import timedelta

import pytest
import redis
import stripe
import time_machine
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone

from tests.webhooks.workers import free_port
from webhooks.models import StripeEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
SECRET = "whsec_test_frozen_redis"


def _free_port() -> int:
    """A port for a private redis-server: a free one of `TOLLGATE_TEST_PORTS` ("18800-18899") when set, so that
    runs sharing a machine keep to their own ranges; else one the OS picks."""
    ports = os.environ.get("TOLLGATE_TEST_PORTS", "")
    if not ports:
        return free_port()
    first, last = (int(bound) for bound in ports.split("-"))
    for port in range(first, last + 1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in TOLLGATE_TEST_PORTS={ports}")


def _private_redis(port: int | None = None, data_dir: str | None = None):
    """A redis-server of the test's own; with `data_dir`, persisting every write (AOF, fsync always), so that a
    restart brings back what it held, as a production Redis with persistence does."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = port or _free_port()
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


@override_settings(CELERY_TASK_ALWAYS_EAGER=False)
def test_a_customer_email_change_answers_200_while_the_broker_is_frozen_and_the_sweep_sends_it_to_stripe(
    frozen_broker, tenant_a, stripe_sdk, caplog
):
    """The change commits, then queueing its Stripe update fails on the frozen broker: the tenant still gets its
    200 (the change is stored), the failure is logged without the broker's address, and beat's sweep sends the
    pending change to Stripe."""
    from customers.models import Customer
    from customers.services.customers import CUSTOMER_SYNC_SETTLE, customer_ensure_stripe, customer_upsert
    from customers.tasks import customers_sync_to_stripe_sweep

    customer, _ = customer_upsert(
        project=tenant_a.project, external_id="user-1", email="old@example.com", name="Ada"
    )
    stripe_id = customer_ensure_stripe(customer=customer)
    sdk = stripe_sdk()
    answers: list[tuple[int, object]] = []

    def post() -> None:
        response = Client(enforce_csrf_checks=True).post(
            "/api/v1/customers",
            data=json.dumps({"external_id": "user-1", "email": "new@example.com"}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {tenant_a.key}"},
        )
        answers.append((response.status_code, response.json()["email"]))
        connection.close()  # this thread's own session

    with caplog.at_level(logging.WARNING, logger="customers.services.customers"):
        sender = threading.Thread(target=post)
        sender.start()
        sender.join(15)  # a hang, not a speed measure
    assert not sender.is_alive(), "the customer update hung on the frozen broker"
    assert answers == [(200, "new@example.com")]
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.email, stored.name, stored.stripe_sync_pending) == ("new@example.com", "Ada", True)
    assert sdk.v1.customers.retrieve(stripe_id).email == "old@example.com"  # nothing reached Stripe yet
    warnings = [r.getMessage() for r in caplog.records if r.name == "customers.services.customers"]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"Could not queue the Stripe update of customer {customer.pk} (")
    assert "127.0.0.1" not in warnings[0]

    # Beat's sweep, the real task code: not while the change's own task may still be retrying, then it sends it.
    assert customers_sync_to_stripe_sweep() == 0
    with time_machine.travel(timezone.now() + CUSTOMER_SYNC_SETTLE + timedelta(seconds=1)):
        assert customers_sync_to_stripe_sweep() == 1
    at_stripe = sdk.v1.customers.retrieve(stripe_id)
    assert (at_stripe.email, at_stripe.name) == ("new@example.com", "Ada")
    assert Customer.objects.get(pk=customer.pk).stripe_sync_pending is False
    assert customers_sync_to_stripe_sweep() == 0  # nothing left pending


@override_settings(CELERY_TASK_ALWAYS_EAGER=False)
def test_a_grant_answers_201_while_the_broker_is_frozen_and_its_webhook_delivery_waits_for_the_sweep(
    frozen_broker, tenant_a
):
    """A write whose outbound event cannot be queued (`events.services.record._queue`): the grant is stored, answered
    201, and its delivery is left pending and due, which is what beat's `deliveries_sweep` sends."""
    from django.utils import timezone

    from catalog.models import Feature
    from entitlements.models import Grant
    from events.models import Delivery
    from events.services.deliver import deliveries_due

    Feature.objects.create(project=tenant_a.project, key="sso", name="SSO", type="boolean")
    client = Client(enforce_csrf_checks=True)
    auth = {"Authorization": f"Bearer {tenant_a.key}"}
    endpoint = client.post(
        "/api/v1/webhook_endpoints",
        data=json.dumps({"url": "https://hooks.example.com/tollgate", "events": ["entitlements.updated"]}),
        content_type="application/json",
        headers=auth,
    )
    assert endpoint.status_code == 201, endpoint.content
    answers: list[int] = []

    def post() -> None:
        response = client.post(
            "/api/v1/entitlements/grants",
            data=json.dumps({"customer": "u1", "feature": "sso", "reason": "trial"}),
            content_type="application/json",
            headers=auth,
        )
        answers.append(response.status_code)
        connection.close()  # this thread's own session

    sender = threading.Thread(target=post)
    sender.start()
    sender.join(15)  # a hang, not a speed measure
    assert not sender.is_alive(), "the grant hung on the frozen broker"
    assert answers == [201]
    assert Grant.objects.filter(customer__external_id="u1", feature__key="sso").count() == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.event.type) == (Delivery.Status.PENDING, "entitlements.updated")
    assert delivery.next_attempt_at <= timezone.now()
    assert deliveries_due() == [delivery.pk]


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
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
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
    from projects.services.keys import api_key_revoke

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
    from projects.services.keys import api_key_revoke

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
    from entitlements.services.grants import grant_delete

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


def _sso_granted_and_cached(api, tenant) -> str:
    """A boolean feature granted to customer u1, its check answered from Redis; returns the check's path."""
    api.post("/api/v1/features", {"key": "sso", "name": "SSO", "type": "boolean"}, key=tenant.key)
    api.post(
        "/api/v1/entitlements/grants", {"customer": "u1", "feature": "sso", "reason": "trial"}, key=tenant.key
    )
    check = "/api/v1/entitlements/check?customer=u1&feature=sso"
    assert api.get(check, key=tenant.key).json()["allowed"] is True  # now cached in Redis
    assert api.get(check, key=tenant.key).json()["allowed"] is True  # and served from it
    return check


def test_a_grant_ended_while_redis_is_frozen_is_not_answered_again_when_redis_returns(
    private_cache, api, tenant_a
):
    """Redis frozen (SIGSTOP): the version bump on commit times out, and Redis wakes up holding the old versions
    and the old answer (and may apply the late bump or not): the epoch bumped in the database turns it down."""
    from core.actors import Actor
    from core.models import CacheEpoch
    from entitlements.models import Grant
    from entitlements.services.grants import grant_delete

    check = _sso_granted_and_cached(api, tenant_a)
    server = private_cache["server"]
    os.kill(server.pid, signal.SIGSTOP)
    grant_delete(grant=Grant.objects.get(), actor=Actor.system("test"), reason="ended")
    os.kill(server.pid, signal.SIGCONT)

    for _ in range(3):
        answer = api.get(check, key=tenant_a.key).json()
        assert answer["allowed"] is False, answer
    assert CacheEpoch.objects.get().value == 1
    assert Grant.objects.get().deleted_at is not None


def test_a_grant_given_while_redis_is_frozen_is_answered_when_redis_returns(private_cache, api, tenant_a):
    """The other direction: "not allowed" cached, a grant given while Redis is frozen, allowed once it returns."""
    from catalog.models import Feature
    from core.actors import Actor
    from entitlements.services.grants import grant_create

    api.post("/api/v1/features", {"key": "sso", "name": "SSO", "type": "boolean"}, key=tenant_a.key)
    check = "/api/v1/entitlements/check?customer=u1&feature=sso"
    assert api.get(check, key=tenant_a.key).json()["allowed"] is False
    assert api.get(check, key=tenant_a.key).json()["allowed"] is False  # served from Redis
    server = private_cache["server"]
    os.kill(server.pid, signal.SIGSTOP)
    grant_create(
        project=tenant_a.project,
        external_id="u1",
        feature=Feature.objects.get(project=tenant_a.project, key="sso"),
        actor=Actor.system("test"),
        reason="trial",
    )
    os.kill(server.pid, signal.SIGCONT)

    assert api.get(check, key=tenant_a.key).json()["allowed"] is True


def _project_suspend(tenant) -> None:
    from core.actors import Actor
    from projects.models import Project
    from projects.services.projects import project_update

    project_update(
        actor=Actor.system("test"), project=tenant.project, status=Project.Status.SUSPENDED, reason="unpaid"
    )


def _assert_suspended(api, tenant, check: str) -> None:
    suspended = {
        "type": "permission_error",
        "code": "project_suspended",
        "message": "This project is suspended.",
        "param": None,
    }
    for path in ("/api/v1/project", check):
        response = api.get(path, key=tenant.key)
        assert (response.status_code, response.json()["error"]) == (403, suspended), path


def test_a_project_suspended_while_redis_is_frozen_stays_suspended_when_redis_returns(
    private_cache, api, tenant_a
):
    from core.models import CacheEpoch
    from entitlements.models import Grant

    check = _sso_granted_and_cached(api, tenant_a)
    assert api.get("/api/v1/project", key=tenant_a.key).status_code == 200  # the key's answer cached in Redis
    server = private_cache["server"]
    os.kill(server.pid, signal.SIGSTOP)
    _project_suspend(tenant_a)
    os.kill(server.pid, signal.SIGCONT)

    _assert_suspended(api, tenant_a, check)
    assert CacheEpoch.objects.get().value >= 1
    assert Grant.objects.get().deleted_at is None  # the denied requests changed nothing


def test_a_project_suspended_while_redis_is_down_stays_suspended_when_redis_restarts_with_its_data(
    private_cache, api, tenant_a
):
    from core.models import CacheEpoch

    check = _sso_granted_and_cached(api, tenant_a)
    assert api.get("/api/v1/project", key=tenant_a.key).status_code == 200
    server = private_cache["server"]
    server.terminate()
    server.wait(10)
    _project_suspend(tenant_a)
    port = int(private_cache["url"].rsplit(":", 1)[1].split("/")[0])
    private_cache["server"], _ = _private_redis(port=port, data_dir=private_cache["dir"])
    assert len(redis.Redis.from_url(private_cache["url"]).keys("*auth:v1:*")) == 1  # the stale answer is back

    _assert_suspended(api, tenant_a, check)
    assert CacheEpoch.objects.get().value >= 1
