"""The emulator over HTTP: a ``ThreadingHTTPServer`` whose handler passes every request to
:meth:`Emulator.handle` and writes back its status, headers and body. Loopback only by default.

Serving sets the emulator's public URL (the base of every hosted URL it renders) to the address it listens
on, unless the emulator already has one or ``public_url`` is given (behind a proxy, in a container)."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from stripe_emulator.core.emulator import Emulator

logger = logging.getLogger(__name__)


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, emulator: Emulator, address: tuple[str, int], *, verbose: bool = False) -> None:
        self.emulator = emulator
        self.verbose = verbose
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def reachable_url(self) -> str:
        """:attr:`url`, with a wildcard bind (``0.0.0.0``, ``::``) named as loopback, which a browser can open."""
        host, port = str(self.server_address[0]), self.server_address[1]
        if host in ("0.0.0.0", ""):  # noqa: S104 -- naming a wildcard bind, not binding one
            host = "127.0.0.1"
        elif host == "::":
            host = "[::1]"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: EmulatorServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's HTTP clients expect
    # One answer, one send: headers and body are buffered and leave together when the request is done (the
    # handler flushes after each), and the socket does not hold back a small segment (TCP_NODELAY). Written as two
    # sends, the body waited for the client's delayed ACK of the headers (Nagle's algorithm): ~40 ms on every
    # answer over a reused connection, which is every call the SDK makes after its first.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        response = self.server.emulator.handle(
            self.command, parts.path, query=parts.query, body=body, headers=dict(self.headers.items())
        )
        # The emulator's answer carries its own `Date` (Stripe's clock), so not the one send_response would add.
        self.log_request(response.status)
        self.send_response_only(response.status)
        self.send_header("Server", self.version_string())
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def handle_expect_100(self) -> bool:
        # The interim `100 Continue` must leave now, not with the answer: the client waits for it to send the body.
        answered = super().handle_expect_100()
        self.wfile.flush()
        return answered

    do_GET = _serve
    do_POST = _serve
    do_DELETE = _serve

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            logger.info("%s - %s", self.address_string(), format % args)


def make_server(
    emulator: Emulator,
    host: str = "127.0.0.1",
    port: int = 12111,
    *,
    verbose: bool = False,
    public_url: str | None = None,
) -> EmulatorServer:
    """A bound server (``port=0`` picks a free port); call ``serve_forever()`` on it. Hosted URLs use
    ``public_url``, else the emulator's own, else the address bound."""
    server = EmulatorServer(emulator, (host, port), verbose=verbose)
    emulator.set_public_url(public_url or emulator.public_url or server.reachable_url)
    return server


def serve_in_thread(
    emulator: Emulator, host: str = "127.0.0.1", port: int = 0, *, public_url: str | None = None
) -> EmulatorServer:
    """Start a server on a daemon thread (tests, demos); stop it with ``server.shutdown()``."""
    server = make_server(emulator, host, port, public_url=public_url)
    # A short poll interval keeps ``shutdown()`` (test teardown) fast.
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="stripe-emulator-http", daemon=True
    ).start()
    return server
