"""The Python client's per-call latency (issue #49, point 18), against `make demo`'s server and production's, each
as a ratio to a bare HTTP/1.1 request measured beside it on the same server.

Two servers on the benchmark's database (DATABASE_URL, as for `make bench`), one after the other:

- `make demo`'s: `manage.py runserver --noreload` under config.settings.local (config/devserver);
- production's: `gunicorn config.wsgi --config python:config.gunicorn`, 2 sync workers, under
  config.settings.production (INSECURE_HTTP=true: plain HTTP on loopback).

On each, warm, one kept-alive connection per caller: the baseline, `http.client` sending `GET /api/v1/project`
with the project key (headers in one write, the answer read to the end), and `tollgate.project.retrieve()`, the
client's call of the same endpoint (httpx, JSON decoded into a typed object). Rounds alternate the two, ROUNDS x
CALLS calls each; per-call median and p99. Rate limits are off (the limiter's round trip stays). A ratio near 1
says the client adds nothing a server would notice; a stall (Nagle's algorithm against delayed ACKs, ~40 ms a
call) shows as a baseline in tens of milliseconds on one server and not the other.

Alone: `python -m bench client_latency`.
"""

import http.client
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.setup import ROOT, free_port, p99, report

ROUNDS = 5
CALLS = 40
FERNET_KEY = "YmVuY2gtY2xpZW50LWxhdGVuY3ktb25seS1rZXktMDA="


def _server_environment(settings_module: str) -> dict[str, str]:
    return {
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", str(ROOT)),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "ALLOWED_HOSTS": "127.0.0.1",
        "API_RATE_LIMIT_PER_MINUTE": "0",
        "LOG_LEVEL": "ERROR",
    }


@contextmanager
def _serving(argv: list[str], env: dict[str, str], port: int) -> Iterator[None]:
    server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while server.poll() is None and time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{argv[:4]} did not start listening on {port} (exit {server.poll()})")
        yield
    finally:
        server.terminate()
        server.wait(timeout=60)


def runserver(port: int) -> Iterator[None]:
    env = _server_environment("config.settings.local")
    return _serving([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], env, port)


def gunicorn(port: int) -> Iterator[None]:
    env = {
        **_server_environment("config.settings.production"),
        "SECRET_KEY": "bench-client-latency-" + "s" * 40,
        "FIELD_ENCRYPTION_KEYS": FERNET_KEY,
        "INSECURE_HTTP": "true",
    }
    argv = [
        *(sys.executable, "-m", "gunicorn", "config.wsgi", "--config", "python:config.gunicorn"),
        *("--bind", f"127.0.0.1:{port}", "--workers", "2", "--log-level", "warning"),
    ]
    return _serving(argv, env, port)


def _time(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1e6


def measure(port: int, secret: str) -> dict[str, list[float]]:
    """Microseconds per call of the bare request and of the client's, interleaved round by round."""
    from tollgate_client import Tollgate

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {secret}", "Accept": "application/json"}

    def bare() -> object:
        connection.request("GET", "/api/v1/project", headers=headers)
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200, body[:300]
        return body

    times: dict[str, list[float]] = {"bare": [], "client": []}
    with Tollgate(secret, f"http://127.0.0.1:{port}", max_retries=0) as tollgate:
        calls: dict[str, Callable[[], object]] = {"bare": bare, "client": tollgate.project.retrieve}
        for call in calls.values():
            for _ in range(5):  # warm: the connection open, the key cached, the code paths loaded
                call()
        for round_ in range(ROUNDS):
            for name in ("bare", "client") if round_ % 2 == 0 else ("client", "bare"):
                for _ in range(CALLS):
                    times[name].append(_time(calls[name]))
    connection.close()
    return times


def run() -> None:
    from core.actors import Actor
    from core.ids import random_token
    from projects.services import projects as services

    slug = f"bench-client-{random_token(8).lower()}"
    _, _, secret = services.project_create(
        actor=Actor.system("bench"), slug=slug, name="Bench client latency"
    )
    servers = {
        "make demo (runserver, config.settings.local)": runserver,
        "production (gunicorn, 2 sync workers, config.settings.production)": gunicorn,
    }
    for title, serve in servers.items():
        port = free_port()
        with serve(port):
            times = measure(port, secret)
        baseline = statistics.median(times["bare"])
        report(
            f"Python client, GET /api/v1/project on a kept-alive connection, against {title}",
            [
                ("http.client, median (baseline)", baseline, "µs"),
                ("http.client, p99", p99(times["bare"]), "µs"),
                ("tollgate.project.retrieve(), median", statistics.median(times["client"]), "µs"),
                ("tollgate.project.retrieve(), p99", p99(times["client"]), "µs"),
            ],
            baseline,
        )
