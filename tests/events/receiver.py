"""A real HTTP receiver on a loopback port, for delivery tests (scripted statuses, recorded requests)."""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    default_status: int = 200
    # Optional: decide the status from the request body (e.g. fail one event, accept the others).
    status_for: Callable[[bytes], int] | None = None
    # Answer a success with the event received (as some tenants' endpoints do), not `{"ok": true}`.
    echo: bool = False
    server: Any = None

    @property
    def url(self) -> str:
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}/hooks"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.received.append(
                    Received(self.path, dict(self.headers.items()), self.rfile.read(length))
                )
                body_in = receiver.received[-1].body
                if receiver.statuses:
                    status = receiver.statuses.pop(0)
                elif receiver.status_for is not None:
                    status = receiver.status_for(body_in)
                else:
                    status = receiver.default_status
                if status >= 300:
                    body = b"upstream trouble " * 300
                else:
                    body = b'{"received": ' + body_in + b"}" if receiver.echo else b'{"ok": true}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
