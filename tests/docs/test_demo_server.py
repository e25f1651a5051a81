"""`make demo`'s web server (`manage.py runserver` under config.settings.local) answers as production's does where a
client or a browser can tell:

- each answer leaves in one write, on a connection that sends at once (TCP_NODELAY): a kept-alive client's next
  answer is never held back by Nagle's algorithm waiting on the client's delayed ACK (runserver wrote the status
  line, the date, the server name, the headers and the body in separate sends, and every call on a kept-alive
  connection waited ~40 ms for the ACK of the first);
- static files come through WhiteNoise, as production serves them, with its `Access-Control-Allow-Origin: *`:
  `<script type="module" src=".../static/tollgate/pricing.js">` on another origin's page is a CORS request, and
  runserver's own static handler answered it without the header, so the browser refused the module.

The server is the real command in its own process, with a newcomer's environment (an SQLite file of the test's).
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.test_demo_concurrency import _port
from tests.webhooks.workers import wait_for

ROOT = Path(__file__).resolve().parents[2]
CALLS = 8


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def runserver(tmp_path_factory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("demo-server")
    port = _port()
    environment = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(work),
        "LANG": "C.UTF-8",
        "DATABASE_URL": f"sqlite:///{work / 'tollgate.sqlite3'}",
    }
    with (work / "runserver.log").open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_for(lambda: _listening(port) or server.poll() is not None, timeout=90)
        assert server.poll() is None, (work / "runserver.log").read_text()
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answer_in_first_read(sock: socket.socket, request: bytes) -> tuple[bytes, bytes | None]:
    """Sends `request`; answers the status line the first read after it brings, and the body if that read brought
    the whole answer (its head and Content-Length bytes of body), else None."""
    sock.sendall(request)
    first = sock.recv(1 << 20)
    head, complete, body = first.partition(b"\r\n\r\n")
    lengths = [
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    ]
    whole = bool(complete) and lengths == [len(body)]
    return head.split(b"\r\n", 1)[0], body if whole else None


def test_each_answer_on_a_kept_alive_connection_arrives_in_one_piece(runserver):
    host, port = runserver.split(":")
    request = f"GET /live HTTP/1.1\r\nHost: {runserver}\r\nAccept: application/json\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # The whole answer in the first read, every time: nothing of it was still waiting at the server.
        answers = [_answer_in_first_read(sock, request) for _ in range(CALLS)]
    assert answers == [(b"HTTP/1.1 200 OK", b'{"status": "ok"}')] * CALLS


def test_static_files_are_served_as_production_serves_them(runserver):
    connection = http.client.HTTPConnection(runserver, timeout=10)
    try:
        connection.request(
            "GET", "/static/tollgate/pricing.js", headers={"Origin": "https://shop.example.com"}
        )
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    source = (ROOT / "core" / "static" / "tollgate" / "pricing.js").read_bytes()
    assert (
        response.status,
        response.getheader("Access-Control-Allow-Origin"),
        response.getheader("Content-Type"),
        body == source,
    ) == (200, "*", 'text/javascript; charset="utf-8"', True)
