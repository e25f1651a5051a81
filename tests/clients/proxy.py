"""A real HTTP proxy in front of the live Tollgate server that misbehaves on cue, for the client's retry tests.

Each scripted fault applies to the next request of its method: answer an error status without forwarding (the
request never reached Tollgate), forward and then answer an error (Tollgate acted, the answer was lost), forward
and then drop the connection, or forward and answer too late. Every request is recorded with its
`Idempotency-Key`, so a test can show that a retry sent the same key.
"""

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

ERROR_TYPES = {
    409: "conflict",
    429: "rate_limit_error",
    500: "api_error",
    502: "payment_provider_error",
    503: "payment_provider_error",
}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}


@dataclass
class Fault:
    method: str
    status: int | None = None  # answer this status (with an error envelope)
    code: str = "injected"
    forward: bool = False  # let Tollgate handle the request first (the answer is lost)
    drop: bool = False  # forward, then close the connection without answering
    delay: float = 0.0  # forward, then wait this long before answering
    retry_after: str | None = None


@dataclass
class Seen:
    method: str
    path: str
    idempotency_key: str | None
    status: int | None  # what the client got; None when the connection was dropped
    replayed: bool = False


@dataclass
class FlakyProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    server: Any = None
    upstream_client: Any = None
    rewrite: Callable[[str], str] | None = None  # the path (with its query) each request is forwarded to

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def fail(self, method: str, status: int | None = None, **options: Any) -> "FlakyProxy":
        self.faults.append(Fault(method=method.upper(), status=status, **options))
        return self

    def requests(self, method: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.method == method.upper()]

    def _take_fault(self, method: str) -> Fault | None:
        for index, fault in enumerate(self.faults):
            if fault.method == method:
                return self.faults.pop(index)
        return None

    def start(self) -> "FlakyProxy":
        proxy = self
        upstream = self.upstream_client = httpx.Client(base_url=self.upstream, timeout=30)

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                method = self.command
                key = self.headers.get("Idempotency-Key")
                fault = proxy._take_fault(method)
                record = Seen(method, self.path, key, None)
                proxy.seen.append(record)
                forwarded = None
                if fault is None or fault.forward or fault.drop or fault.delay:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    target = proxy.rewrite(self.path) if proxy.rewrite is not None else self.path
                    forwarded = upstream.request(method, target, content=body, headers=headers)
                if fault is not None and fault.drop:
                    self.close_connection = True
                    return
                if fault is not None and fault.delay:
                    time.sleep(fault.delay)
                if fault is not None and fault.status is not None:
                    envelope = {
                        "error": {
                            "type": ERROR_TYPES.get(fault.status, "api_error"),
                            "code": fault.code,
                            "message": f"Injected {fault.status} by the test proxy.",
                            "param": None,
                        }
                    }
                    status, payload = fault.status, json.dumps(envelope).encode()
                    extra = {"Content-Type": "application/json", "X-Request-Id": "req_proxy"}
                    if fault.retry_after is not None:
                        extra["Retry-After"] = fault.retry_after
                else:
                    assert forwarded is not None
                    status, payload = forwarded.status_code, forwarded.content
                    extra = {k: v for k, v in forwarded.headers.items() if k.lower() not in HOP_BY_HOP}
                    record.replayed = forwarded.headers.get("Idempotent-Replayed") == "true"
                record.status = status
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up (timeout) makes the late write fail; that is the point

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        # Closing the kept-alive connections lets the live server's threads end and close their database
        # connections (else the test database cannot be dropped at the end of the session).
        self.upstream_client.close()
