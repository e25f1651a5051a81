"""Delivery tasks of tenant events. Their names stay `webhooks.tasks.*` (the app they came from): tasks already
queued and beat's schedule name them so."""

from celery import shared_task

from events.services.deliver import deliveries_due, delivery_send


@shared_task(name="webhooks.tasks.deliver_event", acks_late=True)
def deliver_event(delivery_id: str) -> str | None:
    return delivery_send(delivery_id=delivery_id)


@shared_task(name="webhooks.tasks.deliveries_sweep", acks_late=True)
def deliveries_sweep() -> int:
    """Beat: queues every delivery whose next attempt is due (retries live in the database, not the broker)."""
    due = deliveries_due()
    for delivery_id in due:
        deliver_event.delay(delivery_id)
    return len(due)
