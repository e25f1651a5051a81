"""Per-tenant fairness of outbound deliveries: a slow endpoint holds at most the pool's places
(OUTBOUND_WEBHOOK_DELIVERIES_POOL; past its share, OUTBOUND_WEBHOOK_DELIVERIES_PER_ENDPOINT, only while no other
endpoint waits with fewer); its other deliveries wait their turn in PostgreSQL's schedule, and another project's
deliveries, within their share, find a worker beyond the pool at once."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings

from events.models import Delivery
from events.services import record
from events.tasks import deliver_event, deliveries_sweep
from tests.events.factories import WebhookEndpointFactory
from tests.webhooks.workers import running_workers, wait_for


class Endpoint:
    """A tenant's endpoint on a loopback port that holds each request until released (a slow endpoint), or
    answers at once; it records the order of what it received and how many requests it held at most at once."""

    def __init__(self, *, slow: bool, log: list[str]) -> None:
        self.release = threading.Event()
        self.held = 0
        self.most_held = 0
        self.received: list[str] = []
        lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with lock:
                    endpoint.received.append(body["data"]["object"]["id"])
                    log.append(body["data"]["object"]["id"])
                    endpoint.held += 1
                    endpoint.most_held = max(endpoint.most_held, endpoint.held)
                if slow:
                    endpoint.release.wait(30)
                with lock:
                    endpoint.held -= 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoints():
    log: list[str] = []
    made: list[Endpoint] = []

    def make(*, slow: bool) -> Endpoint:
        made.append(Endpoint(slow=slow, log=log))
        return made[-1]

    make.log = log  # type: ignore[attr-defined]
    yield make
    for endpoint in made:
        endpoint.stop()


def _record(project, object_id):
    with transaction.atomic():
        return record.event_record(
            project=project, type="payment.succeeded", data_object={"id": object_id, "object": "payment"}
        )


def _waiting_lines(client):
    text = client.get("/metrics").content.decode()
    return sorted(
        line for line in text.splitlines() if line.startswith("tollgate_project_deliveries_waiting")
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(OUTBOUND_WEBHOOK_DELIVERIES_PER_ENDPOINT=2, OUTBOUND_WEBHOOK_DELIVERIES_POOL=2)
def test_deliveries_past_an_endpoints_share_wait_their_turn_and_go_in_order(
    tenant_a, tenant_b, shares, broker, endpoints, client
):
    slow, fast = endpoints(slow=False), endpoints(slow=False)
    a_endpoint = WebhookEndpointFactory(project=tenant_a.project, url=slow.url)
    b_endpoint = WebhookEndpointFactory(project=tenant_b.project, url=fast.url)
    for i in range(1, 6):
        _record(tenant_a.project, f"pay_a{i}")
    _record(tenant_b.project, "pay_b1")
    a_deliveries = list(Delivery.objects.filter(endpoint=a_endpoint).order_by("event__sequence"))
    b_delivery = Delivery.objects.get(endpoint=b_endpoint)

    queued = broker.take()
    assert [(name, args[:2]) for name, args in queued] == [
        ("webhooks.tasks.deliver_event", (a_deliveries[0].pk, a_endpoint.pk)),
        ("webhooks.tasks.deliver_event", (a_deliveries[1].pk, a_endpoint.pk)),
        ("webhooks.tasks.deliver_event", (b_delivery.pk, b_endpoint.pk)),
    ]
    assert _waiting_lines(client) == [
        'tollgate_project_deliveries_waiting{project="alpha"} 5.0',
        'tollgate_project_deliveries_waiting{project="bravo"} 1.0',
    ]
    assert deliveries_sweep() == 0  # the pool is full, B's delivery is queued: the sweep queues nothing

    pending = queued
    for _ in range(20):  # one worker, oldest task first; what a task queues goes behind what was waiting
        if not pending:
            break
        _, args = pending.pop(0)
        deliver_event(*args)
        pending.extend(broker.take())
    assert endpoints.log == ["pay_a1", "pay_a2", "pay_b1", "pay_a3", "pay_a4", "pay_a5"]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert _waiting_lines(client) == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(OUTBOUND_WEBHOOK_DELIVERIES_POOL=2)
def test_a_slow_endpoint_holds_the_pool_and_another_projects_delivery_is_sent_at_once(
    tenant_a, tenant_b, shares, endpoints, stripe_emulator, client, monkeypatch
):
    """Three real workers, a pool of two places; A's endpoint hangs. A's six deliveries take the pool's two
    places (two workers), the third worker sends B's delivery (within B's share) at once, and A's others wait
    in PostgreSQL."""
    monkeypatch.setenv("OUTBOUND_WEBHOOK_DELIVERIES_POOL", "2")
    slow, fast = endpoints(slow=True), endpoints(slow=False)
    WebhookEndpointFactory(project=tenant_a.project, url=slow.url)
    WebhookEndpointFactory(project=tenant_b.project, url=fast.url)
    with running_workers(stripe_emulator) as workers:
        for name in ("w1", "w2", "w3"):
            workers.start(name, ready=False)
        for worker in workers.started:
            worker.wait_ready(timeout=90)
        for i in range(1, 7):
            _record(tenant_a.project, f"pay_a{i}")
        assert wait_for(lambda: slow.held == 2, timeout=30)
        started = time.monotonic()
        _record(tenant_b.project, "pay_b1")
        assert wait_for(lambda: fast.received == ["pay_b1"], timeout=30)
        b_took = time.monotonic() - started
        assert wait_for(
            lambda: Delivery.objects.filter(project=tenant_b.project, status="succeeded").count() == 1,
            timeout=10,
        )
        # A's endpoint still holds two requests, and no more: its first two, sent at once by two workers (in
        # whichever order they reach it); its four others wait their turn.
        assert (slow.held, slow.most_held, sorted(slow.received)) == (2, 2, ["pay_a1", "pay_a2"])
        assert _waiting_lines(client) == ['tollgate_project_deliveries_waiting{project="alpha"} 4.0']
        slow.release.set()
        assert wait_for(lambda: len(slow.received) == 6, timeout=60)
        assert wait_for(lambda: Delivery.objects.filter(status="succeeded").count() == 7, timeout=30)
    assert slow.most_held == 2
    assert sorted(slow.received) == [f"pay_a{i}" for i in range(1, 7)]
    assert b_took < 10, b_took
