"""SIGTERM to gunicorn (a deploy, a scale-down) lets the request in flight finish: the tenant gets its answer and
the payment it created, then gunicorn exits 0. The request is held in flight by Stripe itself: the emulator,
served over HTTP, holds its answer to the Checkout Session create (a slow Stripe is a real condition)."""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from billing.models import Payment
from tests.webhooks.workers import SlowStripe, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
SESSIONS = "/v1/checkout/sessions"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sigterm_lets_the_request_in_flight_finish_before_gunicorn_exits(tenant_a, catalog, stripe_emulator):
    stripe = SlowStripe(stripe_emulator).start()
    settings_dict = connection.settings_dict
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="tollgate-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{settings_dict['USER']}@{settings_dict['HOST'] or '127.0.0.1'}:"
        f"{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}",
        "STRIPE_API_BASE": stripe.url,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: _status(f"{base}/live") == 200, timeout=30), Path(log.name).read_text()
        stripe.hold(SESSIONS)
        answer: dict[str, object] = {}

        def checkout() -> None:
            request = urllib.request.Request(
                f"{base}/api/v1/checkout/subscription",
                data=(
                    b'{"customer": "user-1", "price": "pro-monthly", "success_url": "https://app.example.com/ok",'
                    b' "cancel_url": "https://app.example.com/no"}'
                ),
                headers={"Authorization": f"Bearer {tenant_a.key}", "Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                answer["status"] = response.status

        client = threading.Thread(target=checkout)
        client.start()
        assert stripe.arrived.wait(30), Path(log.name).read_text()
        server.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert server.poll() is None  # draining: the request is still in flight
        stripe.release()
        client.join(30)
        assert answer == {"status": 201}
        assert server.wait(timeout=30) == 0, Path(log.name).read_text()
        assert Payment.objects.get().stripe_checkout_session_id.startswith("cs_")
    finally:
        stripe.release()
        if server.poll() is None:
            server.kill()
            server.wait(10)
        stripe.stop()
        log.close()
        Path(log.name).unlink(missing_ok=True)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except (urllib.error.URLError, OSError):
        return 0
