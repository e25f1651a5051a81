"""Outbound webhook deliveries per second for one worker (sequential sends) against a local receiver.

Baseline: the same number of plain `requests.post` calls of the same body to the same receiver, in the same
run — the network and receiver cost that any delivery pays. The ratio shows what Tollgate adds (claiming,
signing, logging the attempt, scheduling).
"""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EVENTS = 300


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def run() -> None:
    import requests
    from django.db import transaction
    from django.utils import timezone

    from bench.setup import report
    from core.actors import Actor
    from core.ids import random_token
    from events.models import Delivery, WebhookEndpoint
    from events.services.deliver import delivery_send
    from events.services.record import event_record
    from projects.services import projects as project_services

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        project, _, _ = project_services.project_create(
            actor=Actor.system("bench"), slug=f"bench-{random_token(8).lower()}", name="Bench"
        )
        with transaction.atomic():
            events = [
                event_record(
                    project=project,
                    type="payment.succeeded",
                    data_object={"id": "pay_bench", "object": "payment"},
                )
                for _ in range(EVENTS)
            ]
        endpoint = WebhookEndpoint.objects.create(
            project=project, url=url, events=["*"], secret="whsec_bench"
        )
        # The deliveries are created due but not queued: the benchmark sends them itself, in turn, like one worker.
        now = timezone.now()
        Delivery.objects.bulk_create(
            Delivery(project=project, event=event, endpoint=endpoint, next_attempt_at=now) for event in events
        )
        ids = list(Delivery.objects.filter(endpoint=endpoint).values_list("pk", flat=True))
        body = (
            b'{"id":"evt_x","object":"event","type":"payment.succeeded","data":{"object":{"id":"pay_bench"}}}'
            * 2
        )

        started = time.perf_counter()
        for _ in ids:
            requests.post(url, data=body, timeout=10)
        baseline = len(ids) / (time.perf_counter() - started)

        started = time.perf_counter()
        for delivery_id in ids:
            assert delivery_send(delivery_id=delivery_id) == Delivery.Status.SUCCEEDED
        measured = len(ids) / (time.perf_counter() - started)
    finally:
        server.shutdown()
        server.server_close()
    report(
        "Outbound deliveries, one worker, local receiver — higher is better",
        [
            ("plain requests.post (baseline)", baseline, "per s"),
            ("delivery_send (claim, sign, send, log)", measured, "per s"),
        ],
        baseline,
    )
