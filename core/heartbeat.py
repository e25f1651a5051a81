"""Liveness files for the Celery worker and beat, for a container healthcheck that costs no Python start-up.

With HEARTBEAT_FILE set, a worker touches it every HEARTBEAT_SECONDS while its consumer runs (connected to the
broker: the step stops with the consumer and starts again once it has reconnected), and beat touches it at each
tick, leading or standing by. A healthcheck then asks only whether the file is fresh, e.g.
`find /app/var/heartbeat -mmin -2 | grep -q .`; `celery inspect ping` would start Python and Django every time.
"""

from pathlib import Path
from typing import Any

from celery import bootsteps
from django.conf import settings

HEARTBEAT_SECONDS = 15.0


def heartbeat_touch() -> None:
    """Touches HEARTBEAT_FILE (when set): the process is alive now."""
    path = settings.HEARTBEAT_FILE
    if path:
        Path(path).touch()


class ConsumerHeartbeat(bootsteps.StartStopStep):
    """A consumer step (config/celery.py adds it): its timer runs on the worker's event loop, so a stuck loop or a
    consumer without a broker connection stops the heartbeat."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.timer_entry: Any = None

    def start(self, parent: Any) -> None:
        heartbeat_touch()
        self.timer_entry = parent.timer.call_repeatedly(HEARTBEAT_SECONDS, heartbeat_touch, priority=10)

    def stop(self, parent: Any) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None
