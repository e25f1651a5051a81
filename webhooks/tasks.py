"""Stripe event processing tasks: an event id in, one service call, idempotent (acks_late)."""

from celery import shared_task

from webhooks import services

MAX_RETRIES = 5


def backoff_seconds(retries: int) -> int:
    """5 s, 10 s, 20 s, 40 s, 80 s … capped at 10 minutes."""
    return int(min(5 * 2**retries, 600))


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def process_stripe_event(self, event_id: str) -> str | None:  # type: ignore[no-untyped-def]
    if self.request.is_eager:
        # Embedded mode has no broker to schedule a retry on: retry in place, without waiting.
        for attempt in range(MAX_RETRIES + 1):
            try:
                return services.stripe_event_process(event_id=event_id, final_attempt=attempt == MAX_RETRIES)
            except services.ProcessingFailed:
                continue
        return None
    try:
        return services.stripe_event_process(
            event_id=event_id, final_attempt=self.request.retries >= self.max_retries
        )
    except services.ProcessingFailed as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc


@shared_task(acks_late=True)
def requeue_stuck_stripe_events() -> int:
    return services.stripe_events_requeue_stuck()


@shared_task(acks_late=True)
def deliver_event(delivery_id: str) -> str | None:
    from webhooks.outbound import delivery_send

    return delivery_send(delivery_id=delivery_id)


@shared_task(acks_late=True)
def deliveries_sweep() -> int:
    """Beat: queues every delivery whose next attempt is due (retries live in the database, not the broker)."""
    from webhooks.outbound import deliveries_due

    due = deliveries_due()
    for delivery_id in due:
        deliver_event.delay(delivery_id)
    return len(due)
