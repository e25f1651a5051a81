"""Per-tenant fairness of outbound deliveries: a free worker takes the due delivery of the endpoint with the
fewest sends running, then the oldest, and no endpoint more than the worker's processes but one at once (the fair
claim, events.services.delivery_turns); a slow endpoint's other deliveries wait their turn in PostgreSQL's
schedule, and another project's delivery finds a worker free at once."""

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from core import claims
from events.models import Delivery
from events.services import deliver as deliver_module
from events.services import record
from events.services.delivery_turns import delivery_claim
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


@pytest.mark.django_db(transaction=True)
def test_the_claim_takes_the_endpoint_with_fewest_sends_running_then_the_oldest_and_caps_one_endpoint(
    tenant_a, tenant_b, broker, endpoints, client, monkeypatch
):
    """Three worker processes: an endpoint may have two sends running. A's five deliveries are older than B's,
    yet the second claim is B's (A has one running, B none), and the fourth finds A at its cap: nothing."""
    monkeypatch.setattr(claims, "_runners", 3)
    a_hook, b_hook = endpoints(slow=False), endpoints(slow=False)
    a_endpoint = WebhookEndpointFactory(project=tenant_a.project, url=a_hook.url)
    b_endpoint = WebhookEndpointFactory(project=tenant_b.project, url=b_hook.url)
    for i in range(1, 6):
        _record(tenant_a.project, f"pay_a{i}")
    _record(tenant_b.project, "pay_b1")
    a = list(
        Delivery.objects.filter(endpoint=a_endpoint).order_by("event__sequence").values_list("pk", flat=True)
    )
    b = Delivery.objects.get(endpoint=b_endpoint).pk
    # Each new delivery rang a worker; the bells carry no delivery of their own.
    assert broker.take() == [("webhooks.tasks.deliver_event", ())] * 6
    assert _waiting_lines(client) == [
        'tollgate_project_deliveries_waiting{project="alpha"} 5.0',
        'tollgate_project_deliveries_waiting{project="bravo"} 1.0',
    ]

    assert [delivery_claim() for _ in range(4)] == [a[0], b, a[1], None]
    assert _waiting_lines(client) == ['tollgate_project_deliveries_waiting{project="alpha"} 3.0']
    assert list(
        Delivery.objects.filter(sending_until__isnull=False).order_by("pk").values_list("pk", flat=True)
    ) == sorted([a[0], a[1], b])
    assert (a_hook.received, b_hook.received) == ([], [])  # claimed, not sent yet

    for pk in (a[0], b, a[1]):  # the workers that claimed them send them
        assert deliver_module.delivery_send(delivery_id=pk, claimed=True) == "succeeded"
    # A bell: the worker sends every due delivery, oldest first.
    assert deliver_event() == 3
    assert (a_hook.received, b_hook.received) == ([f"pay_a{i}" for i in range(1, 6)], ["pay_b1"])
    assert set(Delivery.objects.values_list("status", "sending_until")) == {("succeeded", None)}
    assert _waiting_lines(client) == []
    assert broker.take() == []


@pytest.mark.django_db(transaction=True)
def test_the_sweep_rings_for_due_deliveries_and_a_lapsed_claim_is_due_again(
    tenant_a, broker, endpoints, monkeypatch
):
    """A worker that dies mid-send leaves its claim: the delivery is not due until the lease ends, then the sweep
    rings and it is sent once."""
    hook = endpoints(slow=False)
    WebhookEndpointFactory(project=tenant_a.project, url=hook.url)
    _record(tenant_a.project, "pay_1")
    broker.take()  # the bell lost with its worker
    claimed = delivery_claim()
    assert claimed == Delivery.objects.get().pk
    assert (deliveries_sweep(), broker.take()) == (0, [])  # leased: not due
    assert (deliver_event(), hook.received) == (0, [])

    Delivery.objects.update(
        sending_until=timezone.now() - timedelta(seconds=1),
        next_attempt_at=timezone.now() - timedelta(seconds=1),
    )
    assert deliveries_sweep() == 1
    assert broker.take() == [("webhooks.tasks.deliver_event", ())]
    assert deliver_event() == 1
    assert hook.received == ["pay_1"]
    assert Delivery.objects.get().status == "succeeded"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_slow_endpoint_never_holds_every_worker_and_another_projects_delivery_is_sent_at_once(
    tenant_a, tenant_b, endpoints, stripe_emulator, client
):
    """Three real workers of one process each (so an endpoint may have one send running: the processes but one,
    at least one); A's endpoint hangs. A's first delivery holds one worker, the others find A at its cap, B's
    delivery is sent at once, and A's others wait in PostgreSQL until A's endpoint answers."""
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
        assert wait_for(lambda: slow.held == 1, timeout=30)
        started = time.monotonic()
        _record(tenant_b.project, "pay_b1")
        assert wait_for(lambda: fast.received == ["pay_b1"], timeout=30)
        b_took = time.monotonic() - started
        assert wait_for(
            lambda: Delivery.objects.filter(project=tenant_b.project, status="succeeded").count() == 1,
            timeout=10,
        )
        # A's endpoint still holds one request, and no more: its first; its five others wait their turn.
        assert (slow.held, slow.most_held, slow.received) == (1, 1, ["pay_a1"])
        assert _waiting_lines(client) == ['tollgate_project_deliveries_waiting{project="alpha"} 5.0']
        slow.release.set()
        assert wait_for(lambda: len(slow.received) == 6, timeout=60)
        assert wait_for(lambda: Delivery.objects.filter(status="succeeded").count() == 7, timeout=30)
    assert slow.most_held == 1
    assert sorted(slow.received) == [f"pay_a{i}" for i in range(1, 7)]
    assert b_took < 10, b_took
