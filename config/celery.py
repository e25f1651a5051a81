"""The Celery application: broker, beat schedule and task discovery.

`celery -A config worker` and `celery -A config beat` load production settings unless DJANGO_SETTINGS_MODULE says
otherwise (so does `gunicorn config.wsgi`, which imports this package first); only `manage.py` defaults to local.
"""

import atexit
import contextvars
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init
from kombu.exceptions import OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

logger = logging.getLogger(__name__)


class BrokerSkipped(OperationalError):
    """A publish not tried: the broker let this process's last publish time out a moment ago."""


# How long a process skips a broker that let a publish time out. Not a setting: it only bounds how often a silent
# broker costs one request its timeout (once per process in this window), and beat's sweeps (every 15 s or more)
# queue what was stored meanwhile whatever its value.
BREAKER_SECONDS = 10.0
# Per process, per broker URL: until when (time.monotonic()) publishing is skipped.
_unanswered_until: dict[str, float] = {}


class Tollgate(Celery):
    """Celery with a breaker on publishing. A broker that goes silent (a host that stopped answering: the
    connection accepted or the SYN dropped, nothing refused) makes every publish wait its whole timeout
    (BROKER_TIMEOUT_SECONDS), and the web publishes on the request path, after the commit: every request that
    queues a task would wait. So once a publish has waited that long and failed on the broker's connection, this
    process does not try that broker again for BREAKER_SECONDS: `send_task` (under every `.delay()`,
    `apply_async()` and beat's sends) raises BrokerSkipped at once, which callers treat as any broker failure
    (the work is stored; beat's sweeps queue it). The next publish after that is tried; a success closes the
    breaker. A broker that refuses (down, restarting) fails fast and is tried every time."""

    def send_task(self, name: str, *args: Any, **kwargs: Any) -> Any:
        broker = str(self.conf.broker_url)
        started = time.monotonic()
        if started < _unanswered_until.get(broker, 0.0):
            raise BrokerSkipped("not tried: the broker did not answer this process's last publish")
        try:
            result = super().send_task(name, *args, **kwargs)
        except Exception as exc:
            from django.conf import settings

            waited = time.monotonic() - started
            if waited >= 0.9 * float(settings.BROKER_TIMEOUT_SECONDS) and self._connection_failure(exc):
                _unanswered_until[broker] = time.monotonic() + BREAKER_SECONDS
            raise
        _unanswered_until.pop(broker, None)
        return result

    def _connection_failure(self, exc: Exception) -> bool:
        """A failure of the broker's connection (kombu's OperationalError, a socket's error or the transport's
        own connection errors), not of the message (serialization, routing)."""
        if isinstance(exc, OperationalError | OSError):
            return True
        with self.connection_for_write() as connection:
            return isinstance(exc, tuple(connection.connection_errors))


class BackgroundPublisher:
    """Publishes off the request's path: one daemon thread per process runs the jobs handed to it, in order, from
    a bounded queue. A web request that stores work and must answer whatever the broker does (the Stripe intake)
    hands its publish here: a silent broker then holds this thread for its timeout (once per BREAKER_SECONDS,
    the breaker above skips it in between), never a request.

    Nothing handed here is owed to the broker alone: the work is stored before its publish is handed over, and
    beat's sweeps queue whatever is stored and not applied. So a full queue drops the job (`submit` says so), and
    a process exiting waits at most EXIT_FLUSH_SECONDS for its jobs to run: the daemon thread then dies with the
    ones it had not run, which are not lost, the sweep queues them. The thread starts at the first `submit` in the process that publishes, never before a fork (a thread
    does not survive one: gunicorn's workers, Celery's prefork children each start their own), and a forked
    child drops what its parent had queued (the parent's to publish)."""

    def __init__(self, *, size: int) -> None:
        self._size = size
        self._forked()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._jobs: queue.Queue[Callable[[], object]] = queue.Queue(maxsize=self._size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._waiting: set[str] = set()  # the `coalesce` names of jobs handed over and not started

    def submit(self, job: Callable[[], object], *, coalesce: str = "") -> bool:
        """Hands `job` to the thread; False (dropped) when the queue is full. The job runs in a copy of the caller's
        context (its request id, project and key prefix: the task's message carries the request id on, and the
        publisher's own log lines name it). `coalesce`: a job of that name handed over and not started yet does
        this one's work (a bell rung after what this caller stored: it wakes a worker that finds it), so this one
        is not queued."""
        if coalesce:
            with self._lock:
                if coalesce in self._waiting:
                    return True
                self._waiting.add(coalesce)
            job = partial(self._started, coalesce, job)
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="tollgate-publisher", daemon=True)
                    self._thread.start()
                    atexit.register(self.idle, timeout=EXIT_FLUSH_SECONDS)
        try:
            self._jobs.put_nowait(partial(contextvars.copy_context().run, job))
        except queue.Full:
            if coalesce:
                with self._lock:
                    self._waiting.discard(coalesce)
            return False
        return True

    def _started(self, name: str, job: Callable[[], object]) -> object:
        with self._lock:
            self._waiting.discard(name)  # from now on, what is stored rings again
        return job()

    def idle(self, *, timeout: float) -> bool:
        """Whether every job handed over has run, waiting at most `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        with self._jobs.all_tasks_done:
            while self._jobs.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._jobs.all_tasks_done.wait(left)
        return True

    def _run(self) -> None:
        from django.db import connections

        jobs = self._jobs
        while True:
            job = jobs.get()
            try:
                job()
            except Exception:
                logger.exception("A background publish failed; beat's sweep queues its stored work.")
            finally:
                connections.close_all()  # this thread's own, should a job have opened one
                jobs.task_done()


# How long a process exiting (a gunicorn worker restarted, say) waits for its publisher to send what it was handed;
# what is left then is queued by the sweep.
EXIT_FLUSH_SECONDS = 5.0
# Jobs waiting for the publisher's thread, per process: far more than a silent broker's timeout lets in (a
# dropped one is queued by the sweep).
PUBLISHER_QUEUE_SIZE = 1000
publisher = BackgroundPublisher(size=PUBLISHER_QUEUE_SIZE)

app = Tollgate("tollgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

import core.task_context  # noqa: E402, F401  (connects the correlation-id signals)
from core.heartbeat import ConsumerHeartbeat  # noqa: E402

# The worker's liveness file for its container healthcheck (HEARTBEAT_FILE; nothing when unset).
app.steps["consumer"].add(ConsumerHeartbeat)

SQLITE_WORKER_REFUSAL = (
    "A Celery worker needs PostgreSQL (DATABASE_URL=postgres://…): on SQLite the named locks that keep two "
    "processes from applying the same work (core/locks.py) exist only inside one process. The embedded mode runs "
    "tasks in the web process (eager) instead; see README.md, 'SQLite: what the embedded default can and cannot do'."
)


@worker_init.connect(weak=False)
def _runners_count(sender: Any = None, **_: Any) -> None:
    """The worker's processes (`--concurrency`), read by the fair claim before its children fork
    (`core.claims.runners`)."""
    from core.claims import runners_set

    concurrency = getattr(sender, "concurrency", None)
    if isinstance(concurrency, int) and concurrency > 0:
        runners_set(concurrency)


@worker_init.connect(weak=False)
def _stripe_events_worker(sender: Any = None, **_: Any) -> None:
    """A worker that consumes the Stripe events' queue: its processes say when they are idle, between two tasks
    (`webhooks.services.process.bell_needed`). Connected here, after Celery's Django fixup connected its own
    receivers (at worker_init), so that the fixup's closing of a process's inherited database connections comes
    before the idle mark is taken on a new one."""
    queues = getattr(getattr(getattr(sender, "app", None), "amqp", None), "queues", None)
    if "stripe-events" not in (getattr(queues, "consume_from", None) or {}):
        return
    worker_process_init.connect(_idle, weak=False)
    task_postrun.connect(_idle, weak=False)
    task_prerun.connect(_busy, weak=False)


def _idle(**_: Any) -> None:
    from webhooks.services.process import worker_idle

    worker_idle(True)


def _busy(**_: Any) -> None:
    from webhooks.services.process import worker_idle

    worker_idle(False)


@worker_init.connect(weak=False)
def _refuse_sqlite(**_: Any) -> None:
    """A separate worker on SQLite would apply work beside the web process with no lock between them: it stops
    here, before consuming anything (SystemExit passes through Celery's signal dispatch; other errors are only
    logged)."""
    from django.conf import settings

    if "sqlite" in settings.DATABASES["default"]["ENGINE"]:
        raise SystemExit(SQLITE_WORKER_REFUSAL)
