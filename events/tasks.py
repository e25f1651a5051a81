"""Delivery tasks of tenant events. Their names stay `webhooks.tasks.*` (the app they came from): tasks already
queued and beat's schedule name them so."""

import logging

from celery import shared_task

from core.fairness import share_renew
from events.services.deliver import delivery_send
from events.services.delivery_turns import (
    SHARE_KIND,
    SHARE_LEASE_SECONDS,
    deliveries_sweep_queue,
    delivery_turn_end,
)
from events.services.retention import deliveries_prune

logger = logging.getLogger(__name__)


@shared_task(name="webhooks.tasks.deliver_event", acks_late=True)
def deliver_event(delivery_id: str, endpoint_id: str = "", token: str = "") -> str | None:
    """Sends one delivery; `token`: its place in the endpoint's share (events.services.delivery_turns), given
    back when it ends, with the endpoint's next due deliveries queued."""
    if token:
        share_renew(
            kind=SHARE_KIND,
            tenant=endpoint_id,
            token=token,
            what=delivery_id,
            lease_seconds=SHARE_LEASE_SECONDS,
        )
    try:
        return delivery_send(delivery_id=delivery_id)
    finally:
        if token:
            try:
                delivery_turn_end(endpoint_id=endpoint_id, token=token, delivery_id=delivery_id)
            except Exception:  # the place lapses; the sweep queues what waits
                logger.exception("Could not hand the share of endpoint %s over; the sweep will.", endpoint_id)


@shared_task(name="webhooks.tasks.deliveries_sweep", acks_late=True)
def deliveries_sweep() -> int:
    """Beat: queues every delivery whose next attempt is due (retries live in the database, not the broker)."""
    return deliveries_sweep_queue()


@shared_task(name="webhooks.tasks.deliveries_prune", acks_late=True)
def deliveries_prune_task() -> int:
    """Beat (hourly): deliveries finished longer ago than WEBHOOK_RETENTION_DAYS pruned (events.services.retention)."""
    return deliveries_prune()
