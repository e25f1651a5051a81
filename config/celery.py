"""The Celery application: broker, beat schedule and task discovery.

`celery -A config worker` and `celery -A config beat` load production settings unless DJANGO_SETTINGS_MODULE says
otherwise (so does `gunicorn config.wsgi`, which imports this package first); only `manage.py` defaults to local.
"""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("tollgate")
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
def _refuse_sqlite(**_: Any) -> None:
    """A separate worker on SQLite would apply work beside the web process with no lock between them: it stops
    here, before consuming anything (SystemExit passes through Celery's signal dispatch; other errors are only
    logged)."""
    from django.conf import settings

    if "sqlite" in settings.DATABASES["default"]["ENGINE"]:
        raise SystemExit(SQLITE_WORKER_REFUSAL)
