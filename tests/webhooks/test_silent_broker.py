"""A broker that goes silent (issue #49, point 12): the TCP connection is accepted and nothing ever answers, as a
RabbitMQ host that stopped answering or a blackholed port. Each publish then waits the whole connect timeout
(`BROKER_TIMEOUT_SECONDS`); once every Stripe delivery paid it, then one per process every BREAKER_SECONDS. Now the
intake hands its publish to the process's background publisher (config.celery.publisher) and answers: the silent
broker holds the publisher's thread, never a request, and beat's sweep queues what is stored. The breaker stays:
after one publish waited out the timeout, the next ones are not tried for a while.

The silent broker is a real listener that accepts and never writes; the tests look at what it accepted and still
holds open (counts, not clocks)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from kombu.exceptions import OperationalError

from tests.webhooks.workers import sweep_later
from webhooks.models import StripeEvent

# The broker's timeouts in these tests: the publisher's one connection must still be waiting when the last
# delivery is answered (the listener closes it sooner).
SILENT_TIMEOUT_SECONDS = 20.0


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

    def wait_accepted(self, count: int, *, timeout: float = 5.0) -> None:
        """Returns once `count` connections were accepted (or after `timeout`: the assertions then say so)."""
        deadline = time.monotonic() + timeout
        while len(self.accepted) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def open_connections(self) -> int:
        """The accepted connections their client has not closed (it still waits for an answer)."""
        still = 0
        for conn in self.accepted:
            try:
                still += (
                    conn.recv(64, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
                )  # the AMQP header, unread
            except BlockingIOError:
                still += 1
            except OSError:
                pass
        return still

    def close(self) -> None:
        """Stops listening (what connects next is refused), then closes what it accepted."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; a bare close() would not
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
    names = (
        "task_always_eager",
        "broker_url",
        "broker_transport",
        "broker_transport_options",
        "broker_connection_timeout",
    )
    previous = {name: conf[name] for name in names}
    timeout = (
        SILENT_TIMEOUT_SECONDS  # long enough that the publisher still waits when the deliveries are done
    )
    conf.update(
        task_always_eager=False,
        broker_url=url,
        broker_transport=None,
        broker_transport_options={
            **broker_settings(url)["CELERY_BROKER_TRANSPORT_OPTIONS"],
            "read_timeout": timeout,
            "write_timeout": timeout,
        },
        broker_connection_timeout=timeout,
    )
    celery_app._after_fork()  # connection pools rebuilt for the new broker
    try:
        yield listener
    finally:
        from config.celery import _unanswered_until, publisher

        listener.close()  # a publish still waiting fails now; none is left for another test's broker
        publisher.idle(timeout=SILENT_TIMEOUT_SECONDS)
        _unanswered_until.pop(url, None)  # the breaker: the port may serve another test's broker next
        conf.update(previous)
        celery_app._after_fork()


@override_settings(CELERY_TASK_ALWAYS_EAGER=False, BROKER_TIMEOUT_SECONDS=SILENT_TIMEOUT_SECONDS)
def test_every_delivery_is_answered_while_the_background_publisher_waits_on_the_silent_broker(
    silent_broker: SilentListener, stripe_webhooks: Any, stripe_sdk: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sdk = stripe_sdk()
    customers = [sdk.v1.customers.create({"email": f"buyer{n}@example.com"}).id for n in range(6)]
    for n, customer in enumerate(customers):  # Tollgate's endpoint takes customer.updated (not .created)
        sdk.v1.customers.update(customer, {"name": f"Buyer {n}"})
    # After each delivery is answered: the broker's connections accepted, those still open, and the publishes
    # that already failed (each logs "Could not queue").
    seen: list[tuple[int, int, int]] = []

    def failed_publishes() -> int:
        return sum("Could not queue Stripe event" in record.getMessage() for record in caplog.records)

    send = stripe_webhooks.emulator.webhooks.sender

    def counted(url: str, body: bytes, headers: Any) -> int:
        status = send(url, body, headers)
        silent_broker.wait_accepted(1)  # the publisher's connection (it may come just after the first answer)
        seen.append((len(silent_broker.accepted), silent_broker.open_connections(), failed_publishes()))
        return int(status)

    stripe_webhooks.emulator.webhooks.sender = counted
    stripe_webhooks.deliver()

    # Every delivery was answered, the first included, while the broker's one connection (the background
    # publisher's) was open and no publish had failed yet: the publisher still waited for the broker's answer, no
    # request waited for it, and none connected to it.
    assert [r.status_code for r in stripe_webhooks.responses] == [200] * 6
    assert seen == [(1, 1, 0)] * 6
    stored = StripeEvent.objects.filter(type="customer.updated")
    assert sorted(stored.values_list("ordering_key", flat=True)) == sorted(f"platform:{c}" for c in customers)
    assert set(stored.values_list("status", flat=True)) == {StripeEvent.Status.RECEIVED}

    # The broker's host goes away: the publisher's wait ends and its queued publishes fail at once (refused).
    # Nothing else ever connected; the events wait, stored, for the sweep.
    from config.celery import publisher

    silent_broker.close()
    assert publisher.idle(timeout=SILENT_TIMEOUT_SECONDS)
    assert len(silent_broker.accepted) == 1
    assert failed_publishes() == 2  # the first bell, and one for the five stored while it waited
    assert set(stored.values_list("status", flat=True)) == {StripeEvent.Status.RECEIVED}

    # The broker answers again (here: the tasks run in-process, as after a restart the worker would run them):
    # beat's sweep queues every stored event and each is applied once.
    with override_settings(CELERY_TASK_ALWAYS_EAGER=True):
        from config.celery import app as celery_app

        celery_app.conf.task_always_eager = True
        assert sweep_later() == 6
    assert set(stored.values_list("status", flat=True)) == {StripeEvent.Status.PROCESSED}
    assert stored.count() == 6


@override_settings(BROKER_TIMEOUT_SECONDS=0.5)
def test_after_one_publish_waited_out_the_silent_broker_the_next_are_not_tried(
    silent_broker: SilentListener,
) -> None:
    """The breaker (config.celery): a silent broker costs the publisher one timeout per BREAKER_SECONDS."""
    from config.celery import BrokerSkipped
    from config.celery import app as celery_app
    from webhooks.tasks import process_stripe_event

    celery_app.conf.broker_connection_timeout = 0.5
    celery_app.conf.broker_transport_options = {
        **celery_app.conf.broker_transport_options,
        "read_timeout": 0.5,
        "write_timeout": 0.5,
    }
    celery_app._after_fork()
    failures = []
    for _ in range(3):
        with pytest.raises(OperationalError) as failed:
            process_stripe_event.delay("sevt_silent", "key", "", "")
        failures.append(type(failed.value))
    assert len(silent_broker.accepted) == 1
    assert failures[1:] == [BrokerSkipped, BrokerSkipped]
    assert failures[0] is not BrokerSkipped


def test_a_broker_that_refuses_is_tried_at_every_publish() -> None:
    """Refusing is fast (a broker down or restarting): nothing to save by skipping, and the first publish after
    it is back must go through. Only a publish that waited out the timeout opens the breaker."""
    from config.celery import BrokerSkipped
    from config.celery import app as celery_app
    from webhooks.tasks import process_stripe_event

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
