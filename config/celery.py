"""The Celery application: broker, beat schedule and task discovery."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("tollgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

import core.task_context  # noqa: E402, F401  (connects the correlation-id signals)
