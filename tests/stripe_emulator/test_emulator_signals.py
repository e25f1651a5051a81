"""``python -m stripe_emulator`` stops cleanly on SIGTERM and SIGINT: exit code 0, nothing on stderr, the state
saved — also when a second signal arrives while it is closing (``make demo``'s trap sends SIGTERM on INT and
again on EXIT) and a webhook delivery is still waiting for its endpoint."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import stripe


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A webhook URL that accepts the connection and never answers (a stopped web server's port, half-closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/stripe/webhook"


def _start(tmp_path: Path) -> tuple[subprocess.Popen[bytes], stripe.StripeClient]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stripe_emulator",
            "--port",
            str(port),
            "--data",
            str(tmp_path / "state.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert b"listening on" in process.stdout.readline()
    client = stripe.StripeClient("sk_test_signals", base_addresses={"api": f"http://127.0.0.1:{port}"})
    return process, client


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_it_with_exit_code_0_and_no_traceback(tmp_path: Path, signum: int) -> None:
    process, client = _start(tmp_path)
    customer = client.v1.customers.create({"email": "a@example.com"})

    process.send_signal(signum)
    _, stderr = process.communicate(timeout=20)

    assert (process.returncode, stderr) == (0, b"")
    saved = json.loads((tmp_path / "state.json").read_text())
    assert customer.id in json.dumps(saved)


def test_a_second_sigterm_while_closing_still_exits_cleanly(tmp_path: Path, silent_endpoint: str) -> None:
    process, client = _start(tmp_path)
    client.v1.webhook_endpoints.create({"url": silent_endpoint, "enabled_events": ["*"]})
    customer = client.v1.customers.create(
        {"email": "b@example.com"}
    )  # its event waits on the silent endpoint
    time.sleep(0.3)

    process.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # closing: waiting for the delivery in flight
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)

    assert (process.returncode, stderr) == (0, b"")
    assert customer.id in (tmp_path / "state.json").read_text()
