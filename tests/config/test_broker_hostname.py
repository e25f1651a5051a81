"""The embedded default broker (no REDIS_URL, no CELERY_BROKER_URL: tasks run in the process, eager) is named
with its host, so a management command that queues a task logs no kombu "No hostname was supplied" warning."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.config.test_entry_points import ROOT, run, secrets_env

QUEUE_A_TASK = """
from config.celery import app

@app.task(name="tests.noop")
def noop():
    return "ran"

print(noop.delay().get(), app.conf.broker_url, app.conf.task_always_eager)
"""


def test_a_command_that_queues_on_the_default_broker_warns_nothing(tmp_path: Path) -> None:
    env = secrets_env(tmp_path, DJANGO_SETTINGS_MODULE="config.settings.local")

    done = run([sys.executable, str(ROOT / "manage.py"), "shell", "-c", QUEUE_A_TASK], env)

    assert done.returncode == 0, done.stderr
    assert "No hostname" not in done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "ran memory://localhost/ True"
