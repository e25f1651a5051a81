"""docs/integration.md's test-clock walk-through runs as written against `make demo`: each request of the guide's
block, in order, against a live server seeded as the demo is, answers the status and the JSON its `→` line
documents, and after the advance the renewal invoice and its payment carry the totals the guide states. The one
step the guide leaves to the tenant's page — saving user-9's card with Stripe.js — runs as the guide's `curl`
commands for the demo write it (the emulator's address aside), and the renewal then charges that card."""

import json
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings

from tests.docs.test_integration_examples import _differences, _documented

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "integration.md"
REQUEST = re.compile(r"^(GET|POST) (/api/v1/\S+)(?: +(\{.*\}))?(?:\s+#.*)?$")

pytestmark = pytest.mark.django_db(transaction=True)  # the live server's thread reads committed rows only


def _walk_through() -> str:
    text = GUIDE.read_text()
    start = text.index("The walk-through (each request against `$TOLLGATE`")
    return text[start:].split("```text\n", 1)[1].split("```", 1)[0]


def _steps() -> list[tuple[str, str, str | None, str | None, str]]:
    """(method, path, body, documented answer, comment) per request, in the guide's order."""
    steps: list[tuple[str, str, str | None, str | None, str]] = []
    lines = _walk_through().splitlines()
    for index, line in enumerate(lines):
        if request := REQUEST.match(line):
            answer = None
            following = lines[index + 1 :]
            if following and following[0].startswith("→ "):
                answer = " ".join(
                    [following[0][2:], *(f.strip() for f in following[1:3] if f.startswith("  "))]
                )
            comment = line.split("#", 1)[1].strip() if "#" in line else ""
            steps.append((request.group(1), request.group(2), request.group(3), answer, comment))
    return steps


def test_the_walk_through_has_its_steps():
    assert [(method, path) for method, path, *_ in _steps()] == [
        ("POST", "/api/v1/test_clocks"),
        ("POST", "/api/v1/customers"),
        ("POST", "/api/v1/subscriptions"),
        ("POST", "/api/v1/test_clocks/tclk_…/advance"),
        ("GET", "/api/v1/test_clocks/tclk_…"),
        ("GET", "/api/v1/invoices?customer=user-9"),
        ("GET", "/api/v1/payments?customer=user-9"),
    ]


def _card_commands() -> list[str]:
    """The guide's `$ curl …` lines that save user-9's card at the demo's emulator (the Stripe.js step)."""
    return [line[2:] for line in _walk_through().splitlines() if line.startswith("$ curl ")]


def test_the_walk_through_saves_the_card_against_the_demo():
    demo = "-u sk_test_tollgate_local_demo: http://127.0.0.1:12111/v1/"
    assert [command.split(" ", 1)[1].startswith(demo) for command in _card_commands()] == [True, True]


def _save_card(emulator: str, stripe_customer: str) -> None:
    """Runs the guide's commands as written, against this test's emulator instead of 127.0.0.1:12111 and with the
    test settings' platform key instead of the demo's (config/settings/local.py)."""
    method = ""
    for command in _card_commands():
        command = command.replace("http://127.0.0.1:12111", emulator).replace("cus_…", stripe_customer)
        command = command.replace("sk_test_tollgate_local_demo", settings.STRIPE_SECRET_KEY)
        command = command.replace("pm_…", method)
        ran = subprocess.run(
            [*shlex.split(command), "--silent", "--show-error", "--fail-with-body"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert ran.returncode == 0, (command, ran.stdout, ran.stderr)
        method = method or json.loads(ran.stdout)["id"]


def test_the_walk_through_runs_as_written(
    live_server, seed_demo, emulator_over_http, stripe_sdk, stripe_webhooks
):
    key = seed_demo()["api_key"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    clock = ""
    answers: dict[str, Any] = {}
    for method, path, body, documented, comment in _steps():
        path = path.replace("tclk_…", clock)
        sent = json.loads(body.replace("tclk_…", clock)) if body else None
        if path == "/api/v1/subscriptions":  # "user-9 saves a card on your page (Stripe.js)"
            _save_card(emulator_over_http, answers["/api/v1/customers"]["stripe_customer_id"])
        response = session.request(method, live_server.url + path, json=sent, timeout=30)
        answer = response.json()
        if comment.startswith("poll until"):
            for _ in range(50):
                if answer["status"] == "ready":
                    break
                time.sleep(0.1)
                answer = session.get(live_server.url + path, timeout=30).json()
            assert answer["status"] == "ready"
        if documented:
            status, text = documented.split(" ", 1)
            assert response.status_code == int(status), (path, answer)
            # "(or already "ready")": Stripe may finish the advance before it answers
            text = re.sub(
                r'"status": "advancing", "advancing_to": "[^"]+"', '"status": …, "advancing_to": …', text
            )
            pattern = _documented(text)
            assert _differences(pattern, answer) == [], (path, answer)
        stripe_webhooks.deliver()
        clock = clock or answer["id"]
        answers[path.split("?")[0] if method == "POST" else path] = answer

    renewals = [
        i
        for i in answers["/api/v1/invoices?customer=user-9"]["data"]
        if i["billing_reason"] == "subscription_cycle"
    ]
    invoice_note = next(c for m, p, b, d, c in _steps() if p.startswith("/api/v1/invoices"))
    total = int(re.search(r"total (\d+)", invoice_note).group(1))
    assert [(i["total"], i["status"]) for i in renewals] == [(total, "paid")]
    payment_note = next(c for m, p, b, d, c in _steps() if p.startswith("/api/v1/payments"))
    amount = int(re.search(r"amount (\d+)", payment_note).group(1))
    paid = [
        p
        for p in answers["/api/v1/payments?customer=user-9"]["data"]
        if p["stripe_invoice_id"] == renewals[0]["stripe_invoice_id"]
    ]
    assert [(p["source"], p["status"], p["amount"]) for p in paid] == [("invoice", "succeeded", amount)]
