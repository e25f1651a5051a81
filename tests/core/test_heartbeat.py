"""The worker's and beat's liveness file (core/heartbeat.py), which their compose healthchecks read, and gunicorn's
hooks for web's summed metrics (config/gunicorn.py)."""

from types import SimpleNamespace
from typing import Any

from config import gunicorn
from core.heartbeat import HEARTBEAT_SECONDS, ConsumerHeartbeat, heartbeat_touch
from core.task_context import BeatScheduler


class _Timer:
    def __init__(self) -> None:
        self.calls: list[tuple[float, Any]] = []
        self.canceled = False

    def call_repeatedly(self, seconds: float, fun: Any, priority: int = 0) -> Any:
        self.calls.append((seconds, fun))
        return SimpleNamespace(cancel=lambda: setattr(self, "canceled", True))


def test_heartbeat_touch_writes_the_file_only_when_one_is_set(settings, tmp_path):
    settings.HEARTBEAT_FILE = ""
    heartbeat_touch()
    assert list(tmp_path.iterdir()) == []
    settings.HEARTBEAT_FILE = str(tmp_path / "heartbeat")
    heartbeat_touch()
    assert (tmp_path / "heartbeat").exists()


def test_the_consumer_step_beats_while_the_consumer_runs(settings, tmp_path):
    settings.HEARTBEAT_FILE = str(tmp_path / "heartbeat")
    timer = _Timer()
    consumer = SimpleNamespace(timer=timer)
    step = ConsumerHeartbeat(consumer)
    step.start(consumer)
    assert (tmp_path / "heartbeat").exists()  # at once, not a period later
    assert timer.calls == [(HEARTBEAT_SECONDS, heartbeat_touch)]
    step.stop(consumer)  # the broker connection lost: no more beats until the consumer starts again
    assert timer.canceled


def test_the_worker_runs_the_heartbeat_step():
    from config.celery import app

    assert ConsumerHeartbeat in app.steps["consumer"]


def test_beat_beats_at_every_tick_leading_or_not(settings, tmp_path, monkeypatch):
    settings.HEARTBEAT_FILE = str(tmp_path / "heartbeat")
    scheduler = BeatScheduler.__new__(BeatScheduler)
    monkeypatch.setattr(BeatScheduler, "_lead", lambda self: False)
    assert scheduler.tick() == 5.0
    assert (tmp_path / "heartbeat").exists()


def test_gunicorn_empties_the_metrics_directory_at_start_and_drops_a_dead_workers_gauges(
    tmp_path, monkeypatch
):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_4242.db").write_bytes(b"left by the container's previous run")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    gunicorn.on_starting(None)
    assert directory.is_dir()
    assert list(directory.iterdir()) == []
    (directory / "gauge_livesum_77.db").write_bytes(b"")
    gunicorn.child_exit(None, SimpleNamespace(pid=77))
    assert list(directory.iterdir()) == []
