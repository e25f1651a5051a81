"""One beat at a time (core.task_context.BeatScheduler): of two real `celery beat` processes on one database, the
one that holds the celery-beat lock queues the schedule's tasks and the other stands by, queueing nothing; when
the leader is killed (SIGKILL: its database session ends with it), the standby leads within seconds. Their broker
is TOLLGATE_TEST_BROKER_URL's database (emptied before and after; the test skips without it)."""

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.db import connection

from core.task_context import STANDBY_SECONDS
from tests.redis_databases import flush
from tests.webhooks.workers import broker_url, wait_for

ROOT = Path(__file__).resolve().parents[2]


class Beat:
    def __init__(self, name: str, directory: Path) -> None:
        settings = connection.settings_dict
        self.log = directory / f"{name}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:"
            f"{settings['PORT'] or 5432}/{settings['NAME']}",
            "CELERY_BROKER_URL": broker_url(),
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "text",
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "beat",
                    "--loglevel=INFO",
                    f"--schedule={directory / name}-schedule",
                    "--pidfile=",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def queued(self) -> int:
        return self.output().count("Beat queues ")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_beat_queues_and_a_second_stands_by_until_the_first_dies():
    import redis

    try:
        flush(broker_url())
    except redis.RedisError:
        pytest.skip("Redis is not reachable")
    with tempfile.TemporaryDirectory() as directory:
        first = Beat("first", Path(directory))
        second = None
        try:
            assert wait_for(lambda: "Beat leads" in first.output(), timeout=60), first.output()[-3000:]
            second = Beat("second", Path(directory))
            assert wait_for(lambda: "Beat stands by" in second.output(), timeout=60), second.output()[-3000:]
            # The schedule's shortest interval is 15 s (sweep-webhook-deliveries): the leader queues it, the
            # standby queues nothing meanwhile.
            assert wait_for(lambda: first.queued() >= 2, timeout=60), first.output()[-3000:]
            assert second.queued() == 0
            assert "Beat leads" not in second.output()

            first.kill()
            assert wait_for(lambda: "Beat leads" in second.output(), timeout=STANDBY_SECONDS * 3), (
                second.output()[-3000:]
            )
            assert wait_for(lambda: second.queued() >= 1, timeout=60), second.output()[-3000:]
        finally:
            first.kill()
            if second is not None:
                second.kill()
    flush(broker_url())
