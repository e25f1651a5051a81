"""A broker restart loses no Stripe event, on either broker Tollgate supports (issue #30).

Redis runs as a server of the test's own, without persistence, and is killed (SIGKILL) and started again: every
task it held is gone, as after a crash or a failover to an empty replica. RabbitMQ is the machine's node, on a
virtual host of the test's own, stopped and started again (`rabbitmqctl stop_app` / `start_app`): its quorum
queues keep the tasks. Around the restart, Stripe's events keep arriving: some were queued before it, some arrive
while the broker is down (the intake stores them and answers Stripe 200; queueing fails fast), some after it. Real
Celery workers apply them; beat's sweep (`stripe_events_requeue_due`) queues what the broker lost or never got.
Every event ends applied once, and every payment paid once, with one tenant event each.
"""

import shutil
import subprocess
import uuid
from contextlib import contextmanager

import pytest
from django.db import connection
from django.test import Client
from kombu import Connection

from billing.models import Payment
from events.models import Event
from tests.webhooks.workers import (
    SlowStripe,
    Workers,
    deliver,
    free_port,
    sweep_later,
    wait_for,
    worker_sessions,
)
from webhooks.models import StripeEvent

OK = "https://app.example.com/ok"


class RedisBroker:
    """A Redis server of the test's own, without persistence: killed, it comes back empty."""

    durable = False

    def __init__(self) -> None:
        if not shutil.which("redis-server"):
            pytest.skip("needs redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_for(_reachable(self.url), timeout=10), "redis-server did not start"

    def stop(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: what it held is lost
        self.process.wait(timeout=10)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()


class RabbitBroker:
    """The machine's RabbitMQ node, on a virtual host of the test's own, with quorum queues (config.settings)."""

    durable = True

    def __init__(self) -> None:
        if not shutil.which("rabbitmqctl"):
            pytest.skip("needs RabbitMQ (rabbitmqctl)")
        self.vhost = f"tollgate-test-{uuid.uuid4().hex[:12]}"
        if _rabbitmqctl("add_vhost", self.vhost).returncode != 0:
            pytest.skip("RabbitMQ is not reachable with rabbitmqctl")
        _rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        self.url = f"amqp://guest:guest@127.0.0.1:5672/{self.vhost}"

    def start(self) -> None:
        _rabbitmqctl("start_app")
        _rabbitmqctl("await_startup")
        assert wait_for(_reachable(self.url), timeout=30), "RabbitMQ did not come back"

    def stop(self) -> None:
        assert _rabbitmqctl("stop_app").returncode == 0

    def close(self) -> None:
        self.start()
        _rabbitmqctl("delete_vhost", self.vhost)

    def queue_types(self) -> dict[str, str]:
        listed = _rabbitmqctl(
            "list_queues", "-p", self.vhost, "--quiet", "--no-table-headers", "name", "type"
        )
        return dict(line.split("\t")[:2] for line in listed.stdout.decode().splitlines() if "\t" in line)


def _rabbitmqctl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, timeout=120, check=False)


def _reachable(url: str):
    def check() -> bool:
        try:
            with Connection(url, connect_timeout=1) as connection:
                connection.ensure_connection(max_retries=1)
            return True
        except Exception:
            return False

    return check


@contextmanager
def _producer_on(url: str):
    """This process's Celery producer (the intake's `.delay()`) on `url`, with the settings that broker implies
    (config.settings.base.broker_settings): producer and workers declare the same queues."""
    from config.celery import app
    from config.settings.base import broker_settings

    def apply(conf: dict) -> None:
        app.conf.update(conf)
        app.__dict__.pop("amqp", None)  # its queues were built from the settings it had
        app._after_fork()

    implied = {key.removeprefix("CELERY_").lower(): value for key, value in broker_settings(url).items()}
    previous = {key: app.conf[key] for key in [*implied, "broker_url", "task_always_eager"]}
    apply({**implied, "broker_url": url, "task_always_eager": False})
    try:
        yield
    finally:
        apply(previous)


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request):
    made = RedisBroker() if request.param == "redis" else RabbitBroker()
    made.start()
    yield made
    made.close()


def _purchase(api, tenant, stripe_emulator, customer):
    """A one-time purchase through Tollgate's API, paid on Stripe's hosted page; its Stripe deliveries."""
    created = api.post(
        "/api/v1/payments",
        {
            "customer": customer,
            "price": "credits-1000",
            "flow": "checkout",
            "success_url": OK,
            "cancel_url": OK,
        },
        key=tenant.key,
    ).json()
    stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{created['stripe_checkout_session_id']}/complete",
        query="",
        body=b"card=4242424242424242",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    captured: list = []
    stripe_emulator.webhooks.sender = lambda url, body, headers: (
        captured.append((url, body, dict(headers))) or 200
    )
    stripe_emulator.flush_webhooks()
    assert captured
    return created["id"], captured


def _applied(payment_id):
    return lambda: Payment.objects.get(pk=payment_id).status == "succeeded"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_broker_restart_loses_no_stripe_event(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, broker, settings, monkeypatch
):
    stripe = SlowStripe(stripe_emulator).start()
    workers = Workers(database=dict(connection.settings_dict), stripe=stripe)
    workers.broker = broker.url
    client = Client()
    try:
        with _producer_on(broker.url):
            queued, queued_deliveries = _purchase(api, tenant_a, stripe_emulator, "user-queued")
            during, during_deliveries = _purchase(api, tenant_a, stripe_emulator, "user-during")
            after, after_deliveries = _purchase(api, tenant_a, stripe_emulator, "user-after")

            # No worker yet: the first purchase's events wait in the broker as tasks.
            for delivery in queued_deliveries:
                deliver(client, delivery)
            broker.stop()
            # The broker is down: the intake stores the events and answers 200; queueing them fails fast.
            for delivery in during_deliveries:
                deliver(client, delivery)
            broker.start()
            for delivery in after_deliveries:
                deliver(client, delivery)
            workers.start("w1")

            # The bells rung after the restart wake the worker, which takes every due event by the fair claim:
            # those whose bells the broker lost (Redis came back empty) or never took (during the outage) too.
            assert wait_for(_applied(after), timeout=60), workers.started[0].output()[-3000:]
            assert wait_for(_applied(queued), timeout=60), workers.started[0].output()[-3000:]
            assert wait_for(_applied(during), timeout=60), workers.started[0].output()[-3000:]
            if broker.durable:  # the quorum queue kept the bells queued before the restart
                types = broker.queue_types()
                # Tasks and countdowns (native delayed delivery) in quorum queues; only Celery's own
                # per-worker control queues are classic.
                assert types["celery"] == types["stripe-events"] == "quorum"
                assert types["celery_delayed_0"] == "quorum"
            assert wait_for(
                lambda: not StripeEvent.objects.exclude(status="processed").exists(), timeout=60
            ), list(
                StripeEvent.objects.exclude(status="processed").values_list("type", "status", "last_error")
            )
            # Nothing is left for beat's sweep to ring for.
            assert sweep_later() == 0
    finally:
        workers.stop_all()
        stripe.stop()
        wait_for(lambda: not worker_sessions(), timeout=10)
        workers.remove_logs()

    events = StripeEvent.objects.all()
    assert events.count() == len(queued_deliveries) + len(during_deliveries) + len(after_deliveries)
    assert sorted(set(events.values_list("status", "attempts"))) == [("processed", 1)]
    assert sorted(Payment.objects.values_list("status", flat=True)) == ["succeeded"] * 3
    assert Event.objects.filter(type="payment.succeeded").count() == 3
