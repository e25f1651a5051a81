"""Delivery tasks of tenant events. Their names stay `webhooks.tasks.*` (the app they came from): tasks already
queued and beat's schedule name them so."""

import logging

from celery import shared_task

from events.services.deliver import delivery_send
from events.services.delivery_turns import deliveries_run, deliveries_sweep_queue
from events.services.retention import deliveries_prune

logger = logging.getLogger(__name__)


@shared_task(name="webhooks.tasks.deliver_event", bind=True, acks_late=True)
def deliver_event(self, delivery_id: str = "", endpoint_id: str = "", token: str = "") -> str | int | None:  # type: ignore[no-untyped-def]
    """The bell: a worker sends due deliveries, each taken by the fair claim, until none is due
    (events.services.delivery_turns). Eager (tests, the embedded mode), it sends `delivery_id` in-line.
    `endpoint_id` and `token` are read from messages queued before the fair claim and ignored."""
    if self.request.is_eager:
        return delivery_send(delivery_id=delivery_id) if delivery_id else None
    return deliveries_run()


@shared_task(name="webhooks.tasks.deliveries_sweep", acks_late=True)
def deliveries_sweep() -> int:
    """Beat: queues every delivery whose next attempt is due (retries live in the database, not the broker)."""
    return deliveries_sweep_queue()


@shared_task(name="webhooks.tasks.deliveries_prune", acks_late=True)
def deliveries_prune_task() -> int:
    """Beat (hourly): deliveries finished longer ago than WEBHOOK_RETENTION_DAYS pruned (events.services.retention)."""
    return deliveries_prune()
