"""The same emulator over real HTTP: the SDK's default HTTP client, and webhooks over urllib."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import stripe

from stripe_emulator import Emulator
from stripe_emulator.server import EmulatorServer


def test_sdk_over_http(http_client: stripe.StripeClient) -> None:
    customer = http_client.v1.customers.create({"email": "http@example.com", "metadata": {"a": "1"}})
    assert http_client.v1.customers.retrieve(customer.id).email == "http@example.com"
    page = http_client.v1.customers.list({"limit": 1, "expand": ["data.default_source"]})
    assert [c.id for c in page.data] == [customer.id]
    with pytest.raises(stripe.InvalidRequestError) as info:
        http_client.v1.customers.retrieve("cus_missing")
    assert info.value.http_status == 404


def test_auth_over_http(http_emulator: tuple[Emulator, EmulatorServer]) -> None:
    _, server = http_emulator
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_test_", base_addresses={"api": server.url}).v1.customers.list()
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.url + "/v1/customers")
    assert info.value.code == 401
    assert json.loads(info.value.read())["error"]["type"] == "invalid_request_error"


def test_idempotent_replay_over_http(http_client: stripe.StripeClient) -> None:
    a = http_client.v1.products.create({"name": "p"}, {"idempotency_key": "http-key"})
    b = http_client.v1.products.create({"name": "p"}, {"idempotency_key": "http-key"})
    assert a.id == b.id
    assert b.last_response is not None
    assert b.last_response.headers["Idempotent-Replayed"] == "true"


def test_signed_webhooks_over_http_with_retry(
    http_emulator: tuple[Emulator, EmulatorServer], http_client: stripe.StripeClient, hook_server: object
) -> None:
    emulator, _server = http_emulator
    hook_server.statuses = [500]
    endpoint = http_client.v1.webhook_endpoints.create(
        {"url": hook_server.url, "enabled_events": ["customer.created"]}
    )
    customer = http_client.v1.customers.create({})
    assert emulator.wait_for_webhooks(timeout=5)
    received = hook_server.received
    assert len(received) == 2
    assert endpoint.secret is not None
    event = stripe.Webhook.construct_event(
        received[1].body, received[1].headers["Stripe-Signature"], endpoint.secret
    )
    assert event.data.object.id == customer.id


def test_http_controls(
    http_emulator: tuple[Emulator, EmulatorServer], http_client: stripe.StripeClient
) -> None:
    _emulator, server = http_emulator
    http_client.v1.customers.create({})
    request = urllib.request.Request(server.url + "/_emulator/advance", data=b"seconds=3600", method="POST")
    with urllib.request.urlopen(request) as response:
        assert json.loads(response.read())["offset"] == 3600
    with urllib.request.urlopen(
        urllib.request.Request(server.url + "/_emulator/reset", data=b"", method="POST")
    ):
        pass
    assert http_client.v1.customers.list().data == []


def test_cli_serves_and_persists(tmp_path: object) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = f"{tmp_path}/state.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "stripe_emulator", "--port", str(port), "--data", data],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        client = stripe.StripeClient("sk_test_cli", base_addresses={"api": f"http://127.0.0.1:{port}"})
        deadline = time.monotonic() + 10
        while True:
            try:
                customer = client.v1.customers.create({"email": "cli@example.com"})
                break
            except stripe.APIConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(timeout=10)
    with open(data) as handle:
        state = json.load(handle)
    stored = state["accounts"]["sk_test_cli"]["store"]["objects"]
    assert any(o["id"] == customer.id for o in stored)


def test_public_url_is_the_base_of_hosted_page_urls() -> None:
    """Tollgate calls the emulator at one address (`http://stripe-emulator:12111` in a Docker network), browsers
    open its pages at another (`http://localhost:12111`): `--public-url` sets only the base of rendered URLs."""
    import threading

    from stripe_emulator.server import make_server

    emu = Emulator()
    server = make_server(emu, "127.0.0.1", 0, public_url="http://localhost:12111/")
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        client = stripe.StripeClient("sk_test_public", base_addresses={"api": server.url})
        session = client.v1.checkout.sessions.create(
            {
                "mode": "payment",
                "line_items": [
                    {
                        "price_data": {
                            "currency": "usd",
                            "unit_amount": 500,
                            "product_data": {"name": "Pack"},
                        },
                        "quantity": 1,
                    }
                ],
                "success_url": "https://shop.example/ok",
                "cancel_url": "https://shop.example/cart",
            }
        )
        assert session.url == f"http://localhost:12111/checkout/pay/{session.id}"
        customer = client.v1.customers.create({})
        portal = client.v1.billing_portal.sessions.create(
            {"customer": customer.id, "return_url": "https://shop.example/account"}
        )
        assert portal.url == f"http://localhost:12111/portal/{portal.id}"
        # The page itself is still served at the address the request came in on.
        with urllib.request.urlopen(f"{server.url}/checkout/pay/{session.id}") as page:
            assert page.status == 200
    finally:
        server.shutdown()
        server.server_close()
        emu.close()


def _request(body: bytes) -> bytes:
    return (
        b"POST /v1/customers HTTP/1.1\r\nHost: emulator\r\nAuthorization: Bearer sk_test_tollgate\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def _answer_in_one_read(sock: socket.socket) -> bytes:
    """What the first `recv` of an answer holds: the whole answer when the server sent it in one piece."""
    chunk = sock.recv(65536)
    head, _, body = chunk.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    rest = body
    while len(rest) < length:  # drain what came late, so the connection stays usable
        rest += sock.recv(65536)
    return chunk


def test_an_answer_on_a_reused_connection_arrives_in_one_piece(
    http_emulator: tuple[Emulator, EmulatorServer],
) -> None:
    """Headers and body leave in one send: sent apart, the body waited for the client's delayed ACK of the headers
    (Nagle's algorithm), ~40 ms on every SDK call after a connection's first."""
    _, server = http_emulator
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=5) as sock:
        for n in range(5):  # the first answer, then answers on the reused connection
            sock.sendall(_request(f"email=n{n}%40example.com".encode()))
            chunk = _answer_in_one_read(sock)
            head, _, body = chunk.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            assert json.loads(body)["email"] == f"n{n}@example.com"  # the whole body came with the headers


def test_a_client_that_expects_100_continue_gets_it_before_sending_the_body(
    http_emulator: tuple[Emulator, EmulatorServer],
) -> None:
    _, server = http_emulator
    host, port = server.server_address[:2]
    body = b"email=continue%40example.com"
    with socket.create_connection((str(host), port), timeout=5) as sock:
        head = _request(body)[: -len(body)]
        sock.sendall(head.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"))
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"  # before the body is sent
        sock.sendall(body)
        head, _, answer = _answer_in_one_read(sock).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert json.loads(answer)["email"] == "continue@example.com"
