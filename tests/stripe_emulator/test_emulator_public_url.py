"""The served emulator renders its own public base in every hosted URL: Checkout ``url``, ``hosted_invoice_url``,
``invoice_pdf``, portal ``url`` and 3-D Secure redirects — the address it listens on, or ``--public-url``. Objects
created before it was served, and a state file saved by an earlier run, are rebased onto it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest
import stripe

from stripe_emulator import Emulator
from stripe_emulator.core.emulator import DEFAULT_BASE_URL
from stripe_emulator.sdk import make_client
from stripe_emulator.server import EmulatorServer, serve_in_thread
from tests.stripe_emulator.conftest import KEY_A
from tests.stripe_emulator.payments_fixtures import control

from .billing_fixtures import DAY, customer_with_card, recurring_price

SUCCESS = "https://shop.example/done?session={CHECKOUT_SESSION_ID}"


def _subscription_checkout(client: stripe.StripeClient, customer: str, amount: int = 1900) -> Any:
    price = recurring_price(client, amount)
    return client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": customer,
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": SUCCESS,
        }
    )


def _hosted_urls(client: stripe.StripeClient, emulator: Emulator, customer: str) -> list[str]:
    """Every hosted URL a tenant sees after a checkout-created subscription, a renewal, a portal session and a
    3-D Secure payment."""
    session = _subscription_checkout(client, customer)
    assert control(emulator, f"/_emulator/checkout/sessions/{session.id}/complete").status == 200
    emulator.advance(32 * DAY)  # the renewal invoice is made by the clock, outside any request
    invoices = client.v1.invoices.list({"customer": customer}).data
    assert [i.billing_reason for i in invoices] == ["subscription_cycle", "subscription_create"]
    portal = client.v1.billing_portal.sessions.create(
        {"customer": customer, "return_url": "https://shop.example"}
    )
    intent = client.v1.payment_intents.create(
        {
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_authenticationRequired",
            "confirm": True,
            "return_url": "https://shop.example/back",
        }
    )
    return [
        session.url,
        *[url for invoice in invoices for url in (invoice.hosted_invoice_url, invoice.invoice_pdf)],
        portal.url,
        intent.next_action.redirect_to_url.url,
    ]


def _paths(urls: list[str]) -> list[str]:
    return [
        urlsplit(url).path.rsplit("/", 1)[0] if url.endswith("/pdf") else urlsplit(url).path for url in urls
    ]


def test_served_emulator_renders_the_address_it_listens_on(
    http_emulator: tuple[Emulator, EmulatorServer], http_client: stripe.StripeClient
) -> None:
    emulator, server = http_emulator
    # The checkout is the account's first request: nothing earlier could have told the emulator its address.
    customer = http_client.v1.customers.create({"email": "a@example.com"}).id
    urls = _hosted_urls(http_client, emulator, customer)

    assert emulator.base_url == server.url
    assert all(url.startswith(f"{server.url}/") for url in urls), urls
    session_url, *_ = urls
    with urlopen(session_url, timeout=5) as page:
        assert page.status == 200
    invoice = http_client.v1.invoices.list({"customer": customer}).data[0]
    with urlopen(invoice.hosted_invoice_url, timeout=5) as page:
        assert f'href="{invoice.invoice_pdf}"' in page.read().decode()
    with urlopen(invoice.invoice_pdf, timeout=5) as pdf:
        assert pdf.read().startswith(b"%PDF-1.4")


def test_public_url_option_wins_over_the_bound_address() -> None:
    emulator = Emulator(webhook_mode="manual")
    server = serve_in_thread(emulator, public_url="https://stripe.demo.example:8443/")
    try:
        client = stripe.StripeClient(KEY_A, base_addresses={"api": server.url})
        customer, _ = customer_with_card(client)
        urls = _hosted_urls(client, emulator, customer)
    finally:
        server.shutdown()
        server.server_close()
        emulator.close()
    assert emulator.base_url == "https://stripe.demo.example:8443"
    assert all(url.startswith("https://stripe.demo.example:8443/") for url in urls), urls


def test_in_process_emulator_keeps_the_fixed_base(emulator: Emulator, client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    urls = _hosted_urls(client, emulator, customer)
    assert all(url.startswith(f"{DEFAULT_BASE_URL}/") for url in urls), urls


def test_objects_made_before_serving_are_rebased(emulator: Emulator, client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    before = _hosted_urls(client, emulator, customer)
    session_id = urlsplit(before[0]).path.rsplit("/", 1)[1]
    server = serve_in_thread(emulator)
    try:
        served = stripe.StripeClient(KEY_A, base_addresses={"api": server.url})
        invoices = served.v1.invoices.list({"customer": customer}).data
        after = [
            served.v1.checkout.sessions.retrieve(session_id).url,
            *[url for invoice in invoices for url in (invoice.hosted_invoice_url, invoice.invoice_pdf)],
        ]
        events = served.v1.events.list({"type": "invoice.finalized"}).data
    finally:
        server.shutdown()
        server.server_close()
    # The session completed, so Stripe clears its url; the invoices keep theirs, now on the served base.
    assert after[0] is None
    assert after[1:] == [url.replace(DEFAULT_BASE_URL, server.url) for url in before[1:5]]
    assert {event.data.object.hosted_invoice_url for event in events} == {
        url for url in after[1:] if not url.endswith("/pdf")
    }
    assert _paths(after[1:]) == _paths(before[1:5])


@pytest.fixture
def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def cli(free_port: int, tmp_path: Path) -> Iterator[Any]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> stripe.StripeClient:
        process = subprocess.Popen(
            [sys.executable, "-m", "stripe_emulator", "--port", str(free_port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        processes.append(process)
        client = stripe.StripeClient("sk_test_cli", base_addresses={"api": f"http://127.0.0.1:{free_port}"})
        deadline = time.monotonic() + 10
        while True:
            try:
                client.v1.customers.list()
                return client
            except stripe.APIConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop() -> None:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        processes.clear()

    start.stop = stop  # type: ignore[attr-defined]
    yield start
    stop()


def test_cli_public_url_and_state_saved_by_an_older_run(cli: Any, free_port: int, tmp_path: Path) -> None:
    # A state file written in-process (the fixed base), as `make demo` state files of earlier versions were.
    data = tmp_path / "state.json"
    old = Emulator(webhook_mode="manual", data_path=str(data))
    customer, _ = customer_with_card(make_client(old, "sk_test_cli"))
    session = _subscription_checkout(make_client(old, "sk_test_cli"), customer)
    old.close()
    assert json.loads(data.read_text())["base_url"] == DEFAULT_BASE_URL

    client = cli("--data", str(data))
    assert client.v1.checkout.sessions.retrieve(session.id).url == (
        f"http://127.0.0.1:{free_port}/checkout/pay/{session.id}"
    )
    cli.stop()

    client = cli("--data", str(data), "--public-url", "http://localhost:9999")
    assert (
        client.v1.checkout.sessions.retrieve(session.id).url
        == f"http://localhost:9999/checkout/pay/{session.id}"
    )
    portal = client.v1.billing_portal.sessions.create(
        {"customer": customer, "return_url": "https://shop.example"}
    )
    assert portal.url == f"http://localhost:9999/portal/{portal.id}"
    cli.stop()
    assert json.loads(data.read_text())["base_url"] == "http://localhost:9999"


def test_cli_refuses_a_public_url_that_is_not_a_base(free_port: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stripe_emulator", "--port", str(free_port), "--public-url", "localhost:9999"],
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert b"--public-url must be an http(s) base URL" in done.stderr
