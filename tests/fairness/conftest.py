"""Fairness tests: bells go to the test broker, read back in order; the schedule is the database."""

import ast
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings


@pytest.fixture
def broker(settings: Any) -> Iterator["Broker"]:
    """Tasks are queued on the test's in-memory broker instead of run at once: a test reads them back in order
    and runs each as a worker would."""
    from config.celery import app

    # Read before the setting changes: Celery's configuration reads Django's settings (what it holds before the
    # test is what the next tests must find again).
    previous = app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    broker = Broker()
    try:
        broker.take()  # an empty broker
        yield broker
        broker.take()
    finally:
        app.conf.task_always_eager = previous


class Broker:
    def take(self) -> list[tuple[str, tuple[Any, ...]]]:
        """The task messages waiting on the broker, queue by queue and oldest first in each, taken off it: (task
        name, arguments); once the background publisher has sent what it was handed (the intake publishes there)."""
        from config.celery import app, publisher

        assert publisher.idle(timeout=30), "the background publisher did not publish within 30 s"

        messages = []
        with app.connection_for_read() as conn:
            for name in settings.TASK_QUEUES:  # each kind of work on its queue: events, deliveries, …
                queue = conn.SimpleQueue(name)
                while queue.qsize():
                    message = queue.get(block=False)
                    messages.append((message.headers["task"], ast.literal_eval(message.headers["argsrepr"])))
                    message.ack()
                queue.close()
        return messages
