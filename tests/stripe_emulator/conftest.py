"""Fixtures for the emulator's own tests: an in-process emulator on a controllable clock, SDK clients for two
accounts, a recording webhook receiver, and the emulator served over real HTTP. No Django, no database."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator
from stripe_emulator.sdk import make_client
from stripe_emulator.server import EmulatorServer, serve_in_thread

KEY_A = "sk_test_account_a"
KEY_B = "sk_test_account_b"


class FakeClock:
    """An injected clock: the emulator reads it on every call."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Received:
    url: str
    body: bytes
    headers: dict[str, str]

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook sender double: records every delivery and answers with scripted statuses (default 200)."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    on_receive: Callable[[Received], None] | None = None

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        delivery = Received(url, body, dict(headers))
        self.received.append(delivery)
        if self.on_receive is not None:
            self.on_receive(delivery)
        return self.statuses.pop(0) if self.statuses else 200

    def types(self) -> list[str]:
        return [r.event["type"] for r in self.received]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def emulator(clock: FakeClock, receiver: Receiver) -> Iterator[Emulator]:
    emu = Emulator(
        clock=clock, webhook_mode="manual", webhook_sender=receiver, webhook_retry_delays=(0.01, 0.01)
    )
    yield emu
    emu.close()


@pytest.fixture
def client(emulator: Emulator) -> stripe.StripeClient:
    return make_client(emulator, KEY_A)


@pytest.fixture
def other_client(emulator: Emulator) -> stripe.StripeClient:
    return make_client(emulator, KEY_B)


def add_endpoint(client: stripe.StripeClient, events: list[str] | None = None) -> tuple[str, str]:
    """Register an endpoint; returns (id, signing secret)."""
    endpoint = client.v1.webhook_endpoints.create(
        {"url": "http://receiver.invalid/hooks", "enabled_events": events or ["*"]}
    )
    assert endpoint.secret is not None
    return endpoint.id, endpoint.secret


# -- over real HTTP ----------------------------------------------------------------------------------------


class _HookHandler(BaseHTTPRequestHandler):
    server: _HookServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.received.append(Received(self.path, body, dict(self.headers.items())))
            status = self.server.statuses.pop(0) if self.server.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _HookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HookHandler)
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.statuses: list[int] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/stripe/webhooks"


@pytest.fixture
def hook_server() -> Iterator[_HookServer]:
    server = _HookServer()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def http_emulator() -> Iterator[tuple[Emulator, EmulatorServer]]:
    """The real HTTP server on a free loopback port, with background webhook delivery over urllib."""
    emu = Emulator(webhook_retry_delays=(0.02, 0.02))
    server = serve_in_thread(emu)
    yield emu, server
    server.shutdown()
    server.server_close()
    emu.close()


@pytest.fixture
def http_client(http_emulator: tuple[Emulator, EmulatorServer]) -> stripe.StripeClient:
    _, server = http_emulator
    return stripe.StripeClient(KEY_A, base_addresses={"api": server.url})
