"""Real Celery workers for the Stripe event pipeline tests, and the Stripe they talk to.

A worker here is a real `celery worker` process (prefork pool) on the real Redis broker, reading the test
database. It reaches Stripe through the test's emulator served over HTTP (`SlowStripe`), which can hold chosen
answers back: Stripe is a process boundary we do not own, so a slow or hanging Stripe is a real condition
to test under, and it is how a test catches a worker in the middle of an event.

Run as `python -m tests.webhooks.workers <celery worker options>`: the test settings with `STRIPE_API_BASE`
taken from the environment (the test settings pin the in-process emulator's address, which another process
cannot reach).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.redis_databases import BROKER_NEEDED, flush, given_broker_url

ROOT = Path(__file__).resolve().parents[2]
# Worker sessions carry this application_name, so a test finds them in pg_stat_activity.
APPLICATION_NAME = "tollgate-test-worker"
# Lines the harness writes to a worker's output (see main).
MARK = "[tollgate-test-worker]"


def broker_url() -> str:
    """The Redis database the workers consume, as given in TOLLGATE_TEST_BROKER_URL (tests/redis_databases.py:
    never derived from REDIS_URL); the test skips without it or without REDIS_URL."""
    url = given_broker_url()
    if not os.environ.get("REDIS_URL") or url is None:
        pytest.skip(BROKER_NEEDED)
    return url


def free_port() -> int:
    """A TCP port on the loopback nobody listens on right now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sweep_later(seconds: float = 31) -> int:
    """Beat's Stripe event sweep as it runs `seconds` from now (past QUEUE_SETTLE), without waiting for it."""
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from webhooks.services.process import stripe_events_requeue_due

    with time_machine.travel(timezone.now() + timedelta(seconds=seconds), tick=True):
        return stripe_events_requeue_due()


def wait_for(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class SlowStripe:
    """The emulator as workers see it over HTTP. While `hold(path)` is on, requests whose path starts with
    `path` wait (at most `timeout` seconds) until `release()`; `arrived` is set when the first one is waiting."""

    def __init__(self, emulator: Any, *, timeout: float = 15.0) -> None:
        self.emulator = emulator
        self.timeout = timeout
        self.held_path = ""
        self.arrived = threading.Event()
        self.released = threading.Event()
        self.requests: list[tuple[str, str]] = []
        self.server: Any = None

    def __getattr__(self, name: str) -> Any:
        # Everything else is the emulator's (its public URL, which serving sets, above all).
        return getattr(self.emulator, name)

    def handle(self, method: str, path: str, **kwargs: Any) -> Any:
        self.requests.append((method, path))
        if self.held_path and path.startswith(self.held_path) and not self.released.is_set():
            self.arrived.set()
            self.released.wait(self.timeout)
        return self.emulator.handle(method, path, **kwargs)

    def hold(self, path: str) -> None:
        self.held_path = path
        self.arrived.clear()
        self.released.clear()

    def release(self) -> None:
        self.released.set()

    def calls(self, path: str) -> int:
        return sum(1 for _, requested in self.requests if requested.startswith(path))

    def start(self) -> SlowStripe:
        from stripe_emulator.server import serve_in_thread

        self.server = serve_in_thread(self)  # the server only calls `handle`
        return self

    def stop(self) -> None:
        self.release()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        return str(self.server.url)


class Worker:
    """One `celery worker` process group (the main process and its prefork children)."""

    def __init__(self, name: str, *, database: dict[str, Any], broker: str, stripe_url: str) -> None:
        self.name = name
        user = database["USER"]
        host = database["HOST"] or "127.0.0.1"
        port = database["PORT"] or 5432
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (kept open for the process's life)
            prefix=f"tollgate-{name}-", suffix=".log", delete=False
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": f"postgres://{user}@{host}:{port}/{database['NAME']}"
            f"?application_name={APPLICATION_NAME}-{name}",
            "CELERY_BROKER_URL": broker,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "STRIPE_API_BASE": stripe_url,
            # INFO: the pipeline's own lines (a database conflict met) reach the output.
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "text",
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.webhooks.workers",
                "--pool=prefork",
                "--concurrency=1",
                f"--hostname={name}@%h",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() takes the pool's children too
        )

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        if not wait_for(
            lambda: f"{MARK} ready" in self.output() or self.process.poll() is not None, timeout=timeout
        ):
            raise AssertionError(f"worker {self.name} not ready after {timeout} s:\n{self.output()[-3000:]}")
        if self.process.poll() is not None:
            raise AssertionError(f"worker {self.name} exited:\n{self.output()[-3000:]}")

    def finished_tasks(self, name: str = "webhooks.tasks.process_stripe_event") -> int:
        """Tasks `name` this worker ran to the end, whatever they returned."""
        return self.output().count(f"{MARK} task {name} SUCCESS")

    def settled(self) -> bool:
        """Every task this worker received has finished, and none came in the next second (a bell on its way).
        How many bells the intake rang is not the number of events: none while workers run and none is idle
        (`webhooks.services.process.bell_needed`), one for all those a waiting bell covers."""

        def counts() -> tuple[int, int]:
            output = self.output()
            received = output.count(f"{MARK} received webhooks.tasks.")
            return received, output.count(
                f"{MARK} task webhooks.tasks."
            )  # task_postrun: one per run, any state

        before = counts()
        if before[0] != before[1]:
            return False
        time.sleep(1.0)
        return counts() == before

    def kill(self) -> None:
        """SIGKILL to every process of the worker: no cleanup (the OOM killer, `kill -9`, a crashed container).
        The kernel closes its sockets, so PostgreSQL ends its sessions at once."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Ends the worker when its test is done: nothing of its work is left to finish then (the test waited
        for what it asserts), and a warm shutdown costs seconds per worker."""
        self.kill()
        self.log.close()

    def remove_log(self) -> None:
        Path(self.log.name).unlink(missing_ok=True)


class Workers:
    """Starts workers on the broker and points this process's Celery producer at it for the test's life."""

    def __init__(self, *, database: dict[str, Any], stripe: SlowStripe) -> None:
        self.database = database
        self.stripe = stripe
        self.broker = broker_url()
        self.started: list[Worker] = []

    def start(self, name: str, *, ready: bool = True) -> Worker:
        worker = Worker(name, database=self.database, broker=self.broker, stripe_url=self.stripe.url)
        self.started.append(worker)
        if ready:
            worker.wait_ready()
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()

    def remove_logs(self) -> None:
        for worker in self.started:
            worker.remove_log()


def _use_broker(*, eager: bool, url: str) -> None:
    """Points this process's Celery producer at `url` (connection pools are rebuilt, as after a fork)."""
    from config.celery import app as celery_app

    celery_app.conf.task_always_eager = eager
    celery_app.conf.broker_url = url
    celery_app._after_fork()


@contextmanager
def running_workers(emulator: Any) -> Iterator[Workers]:
    """The broker flushed, the emulator served over HTTP, the producer on the broker; workers stopped after
    (and their database sessions gone, so the test database can be flushed and dropped)."""
    import redis
    from django.db import connection

    from config.celery import app as celery_app

    broker = broker_url()
    try:
        flush(broker)
    except redis.RedisError:
        pytest.skip("Redis is not reachable")
    stripe = SlowStripe(emulator).start()
    workers = Workers(database=dict(connection.settings_dict), stripe=stripe)
    previous = (celery_app.conf.task_always_eager, celery_app.conf.broker_url)
    _use_broker(eager=False, url=broker)
    try:
        yield workers
    finally:
        _use_broker(eager=previous[0], url=previous[1])
        workers.stop_all()
        stripe.stop()
        wait_for(lambda: not worker_sessions(), timeout=10)
        flush(broker)
        workers.remove_logs()


def worker_sessions(worker: Worker | None = None) -> list[int]:
    """Backend pids of the workers' (or one worker's) sessions on the test database, never this process's."""
    from django.db import connection

    name = f"{APPLICATION_NAME}-{worker.name}" if worker is not None else f"{APPLICATION_NAME}-%"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name LIKE %s",
            [name],
        )
        return [row[0] for row in cursor.fetchall()]


def lock_holder(name: str) -> str | None:
    """The application_name of the session holding the named lock of core.locks (None: nobody)."""
    from django.db import connection

    from core.locks import NAMESPACE

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid::bigint = %s "
            "AND l.objid::bigint = (hashtext(%s)::bigint & 4294967295) AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            [NAMESPACE, name],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def terminate_worker_sessions() -> list[int]:
    """What a PostgreSQL restart does to the workers: every session of theirs ends (once this returns, their
    backends are gone). Returns the ended sessions' backend pids."""
    from django.db import connection

    pids = worker_sessions()
    with connection.cursor() as cursor:
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s, 10000)", [pid])  # waits until it has ended
            assert cursor.fetchone()[0], f"session {pid} did not end"
    return pids


def deliver(client: Any, delivery: tuple[str, bytes, dict[str, str]]) -> None:
    """Posts one signed Stripe delivery to the intake, as Stripe would, and returns once its processing was
    published (the intake answers before: its publish runs on the process's background publisher)."""
    from config.celery import publisher

    url, body, headers = delivery
    response = client.post(
        urlsplit(url).path,
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": headers["Stripe-Signature"]},
    )
    assert response.status_code == 200, response.content
    assert publisher.idle(timeout=30), "the background publisher did not publish within 30 s"


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from django.conf import settings

    settings.STRIPE_API_BASE = os.environ["STRIPE_API_BASE"]
    from celery import signals

    from config.celery import app

    # Celery's own INFO lines (ready, task outcomes, retries) do not reach the worker's output under the
    # project's LOGGING (the "celery" logger is left without a handler), so the harness writes what tests read.
    def say(line: str) -> None:
        print(line, file=sys.__stderr__, flush=True)

    signals.worker_ready.connect(lambda **_: say(f"{MARK} ready"), weak=False)
    signals.task_postrun.connect(
        lambda task=None, state=None, **_: say(f"{MARK} task {task.name if task else '?'} {state}"),
        weak=False,
    )
    signals.task_retry.connect(lambda reason=None, **_: say(f"{MARK} retry {reason!r}"), weak=False)
    signals.task_received.connect(
        lambda request=None, **_: say(f"{MARK} received {getattr(request, 'name', '?')}"), weak=False
    )
    app.worker_main(["worker", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
