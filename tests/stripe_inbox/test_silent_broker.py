"""A broker that goes silent (issue #49, point 12): the TCP connection is accepted and nothing ever answers, as a
RabbitMQ host that stopped answering or a blackholed port. Each publish then waits the whole connect timeout
(`BROKER_TIMEOUT_SECONDS`); before the fix every Stripe delivery paid it. Now the first publish that times out
opens the process's breaker for that broker (config.celery): the next ones are not tried, the intake stores and
answers at once, and beat's sweep queues what is stored once the broker answers again.

The silent broker is a real listener that accepts and never writes; the attempts are counted where it accepts
them (a count, not a clock)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from kombu.exceptions import OperationalError

from stripe_inbox.models import StripeEvent
from tests.stripe_inbox.workers import sweep_later


class SilentListener:
    """Accepts every connection and says nothing: a broker host that stopped answering."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", _port()))
        self.sock.listen(64)
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def _port() -> int:
    """A port of `TOLLGATE_TEST_PORTS` ("19400-19499") when set, so that runs sharing a machine keep to their own
    ranges; else one the OS picks."""
    ports = os.environ.get("TOLLGATE_TEST_PORTS", "")
    if not ports:
        return 0
    first, last = (int(bound) for bound in ports.split("-"))
    for port in range(first, last + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in TOLLGATE_TEST_PORTS={ports}")


@pytest.fixture
def silent_broker() -> Iterator[SilentListener]:
    """The Celery app publishing to a RabbitMQ URL whose host accepts and never answers (restored after)."""
    from config.celery import app as celery_app
    from config.settings.base import broker_settings

    listener = SilentListener()
    url = f"amqp://tollgate:secret@127.0.0.1:{listener.port}/tollgate"
    conf = celery_app.conf
    names = ("task_always_eager", "broker_url", "broker_transport", "broker_transport_options")
    previous = {name: conf[name] for name in names}
    conf.update(
        task_always_eager=False,
        broker_url=url,
        broker_transport=None,
        broker_transport_options=broker_settings(url)["CELERY_BROKER_TRANSPORT_OPTIONS"],
    )
    celery_app._after_fork()  # connection pools rebuilt for the new broker
    try:
        yield listener
    finally:
        conf.update(previous)
        celery_app._after_fork()
        listener.close()


@override_settings(CELERY_TASK_ALWAYS_EAGER=False)
def test_after_one_timeout_the_intake_answers_without_the_silent_broker_and_the_sweep_applies_everything(
    silent_broker: SilentListener, stripe_webhooks: Any, stripe_sdk: Any
) -> None:
    sdk = stripe_sdk()
    customers = [sdk.v1.customers.create({"email": f"buyer{n}@example.com"}).id for n in range(12)]
    for n, customer in enumerate(customers):  # Tollgate's endpoint takes customer.updated (not .created)
        sdk.v1.customers.update(customer, {"name": f"Buyer {n}"})
    attempts: list[int] = []  # the broker's accepted connections after each delivery
    send = stripe_webhooks.emulator.webhooks.sender

    def counted(url: str, body: bytes, headers: Any) -> int:
        status = send(url, body, headers)
        attempts.append(len(silent_broker.accepted))
        return int(status)

    stripe_webhooks.emulator.webhooks.sender = counted
    stripe_webhooks.deliver()

    # Every delivery answered 200 and its event is stored, each about its own customer (its own key: nothing rides
    # on another's queued task).
    assert [r.status_code for r in stripe_webhooks.responses] == [200] * 12
    stored = StripeEvent.objects.filter(type="customer.updated")
    assert sorted(stored.values_list("ordering_key", flat=True)) == sorted(f"platform:{c}" for c in customers)
    assert set(stored.values_list("status", flat=True)) == {StripeEvent.Status.RECEIVED}
    # Only the first delivery tried the silent broker (and paid its timeout); the other eleven did not connect.
    assert attempts[0] == 1
    assert attempts == [1] * 12

    # The broker answers again (here: the tasks run in-process, as after a restart the worker would run them):
    # beat's sweep queues every stored event and each is applied once.
    with override_settings(CELERY_TASK_ALWAYS_EAGER=True):
        from config.celery import app as celery_app

        celery_app.conf.task_always_eager = True
        assert sweep_later() == 12
    assert set(stored.values_list("status", flat=True)) == {StripeEvent.Status.PROCESSED}
    assert stored.count() == 12


def test_a_broker_that_refuses_is_tried_at_every_publish() -> None:
    """Refusing is fast (a broker down or restarting): nothing to save by skipping, and the first publish after
    it is back must go through. Only a publish that waited out the timeout opens the breaker."""
    from config.celery import BrokerSkipped
    from config.celery import app as celery_app
    from stripe_inbox.tasks import process_stripe_event

    with socket.socket() as closed:  # a port of ours that nobody listens on
        closed.bind(("127.0.0.1", _port()))
        url = f"amqp://tollgate:secret@127.0.0.1:{closed.getsockname()[1]}/tollgate"
        previous = celery_app.conf.task_always_eager, celery_app.conf.broker_url
        celery_app.conf.update(task_always_eager=False, broker_url=url)
        celery_app._after_fork()
        try:
            failures = []
            for _ in range(3):
                with pytest.raises(OperationalError) as failed:
                    process_stripe_event.delay("sevt_refused", "key", "", "")
                failures.append(failed.value)
        finally:
            celery_app.conf.task_always_eager, celery_app.conf.broker_url = previous
            celery_app._after_fork()
    assert not [f for f in failures if isinstance(f, BrokerSkipped)]
