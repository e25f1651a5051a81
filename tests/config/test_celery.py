"""Celery is configured from Django settings, with the beat schedule and safe acknowledgement."""

from config.celery import app


def test_tasks_are_acknowledged_late_and_serialised_as_json():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.task_serializer == "json"


def test_beat_purges_idempotency_keys():
    schedule = app.conf.beat_schedule
    assert schedule["purge-idempotency-keys"]["task"] == "core.tasks.idempotency_keys_purge"
    app.loader.import_default_modules()
    assert "core.tasks.idempotency_keys_purge" in app.tasks
