"""The correlation id across the broker: a task queued while a request is handled carries that request's id in a
message header, and every log line the task writes (Celery's own included) shows it as `request_id`. Each run of
a beat-scheduled task gets an id of its own, `beat-<task>-<uuid>` (`BeatScheduler`), which the tasks it queues
carry on in turn, so one sweep's lines share one id. A task queued without any (a shell, a script) logs under
`task_<task id>`.

Connected by `config/celery.py` (Celery signals, so it covers every task without touching them) and by
`CELERY_BEAT_SCHEDULER`."""

import logging
import uuid
from typing import Any

from celery.beat import PersistentScheduler, ScheduleEntry
from celery.signals import before_task_publish, task_postrun, task_prerun

from core import context
from core.heartbeat import heartbeat_touch

HEADER = "tollgate_request_id"
# The lock only one beat holds at a time, and how often a beat that does not hold it looks again.
BEAT_LOCK = "celery-beat"
STANDBY_SECONDS = 5.0
logger = logging.getLogger(__name__)
_tokens: dict[str, Any] = {}


@before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = context.request_id.get()
    if headers is not None and request_id != "-":
        headers.setdefault(HEADER, request_id)


@task_prerun.connect
def _enter(task_id: str = "", task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    carried = getattr(request, HEADER, None) or (getattr(request, "headers", None) or {}).get(HEADER)
    current = context.request_id.get()  # an eager task runs inside the request that queued it
    _tokens[task_id] = context.request_id.set(
        str(carried or (current if current != "-" else f"task_{task_id}"))
    )


@task_postrun.connect
def _leave(task_id: str = "", **_: Any) -> None:
    token = _tokens.pop(task_id, None)
    if token is not None:
        context.request_id.reset(token)


def beat_correlation_id(task: str) -> str:
    """`beat-<task's own name>-<uuid>`: the task named without its module, so the id reads in a log line."""
    return f"beat-{task.rpartition('.')[2]}-{uuid.uuid4().hex}"


class BeatScheduler(PersistentScheduler):
    """Celery's default scheduler (the schedule's state in `--schedule`'s file), queueing each run of a task
    under a correlation id of its own: the publish signal above carries it in the message's header, and beat's
    own "Sending due task" line shows it too.

    One beat at a time: a beat queues work only while its database session holds the `celery-beat` lock
    (core.locks). A second beat, started by mistake or as a standby on another host, waits and checks again every
    STANDBY_SECONDS; when the leader dies its session ends, PostgreSQL releases the lock, and the standby leads
    from its next check. A leader whose session broke (a database restart) stops queueing until it holds the lock
    again."""

    _leading: bool | None = None  # None: not checked yet

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        token = context.request_id.set(beat_correlation_id(str(entry.task)))
        try:
            logger.info("Beat queues %s.", entry.task)
            super().apply_entry(entry, producer)
        finally:
            context.request_id.reset(token)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        heartbeat_touch()  # alive, leading or standing by (core/heartbeat.py)
        if not self._lead():
            return STANDBY_SECONDS
        return float(super().tick(*args, **kwargs))

    def _lead(self) -> bool:
        from django.db import DatabaseError, connection

        from core import locks

        try:
            leading = (self._leading and locks.lock_held(BEAT_LOCK)) or locks.lock_try(BEAT_LOCK)
        except DatabaseError:
            connection.close()  # the next check opens a new session
            leading = False
        if leading and not self._leading:
            logger.warning("Beat leads: it holds the celery-beat lock.")
        elif not leading and self._leading is not False:
            logger.warning(
                "Beat stands by: another beat holds the celery-beat lock, or the database is unreachable; "
                "checking again every %s s.",
                STANDBY_SECONDS,
            )
        self._leading = leading
        return leading
