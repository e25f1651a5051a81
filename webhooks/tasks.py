"""Stripe event processing tasks: an event id in, one service call, idempotent (acks_late).

Registered under the names they had in the app they came from (`webhooks.tasks.*`): tasks already queued and
beat's schedule name them so."""

import logging
import random

from celery import shared_task
from django.db import InterfaceError, OperationalError

from core.db import connections_check, connections_close
from webhooks.services.process import (
    stripe_event_process,
    stripe_events_process_key,
    stripe_events_requeue_due,
    stripe_events_run,
)
from webhooks.services.retention import stripe_events_prune

logger = logging.getLogger(__name__)

# A database that is down (restarting, failing over) is waited for: the task retries with backoff, and the
# beat sweep rings again for whatever is still due once it is back.
DATABASE_RETRIES = 30


def database_backoff_seconds(retries: int) -> float:
    """1 s, 2 s, 4 s … capped at a minute, with jitter so workers do not reconnect in step."""
    return float(min(2**retries, 60)) * random.uniform(0.8, 1.2)  # noqa: S311 (jitter)


@shared_task(
    name="webhooks.tasks.process_stripe_event", bind=True, acks_late=True, max_retries=DATABASE_RETRIES
)
def process_stripe_event(  # type: ignore[no-untyped-def]
    self, event_id: str = "", key: str = "", tenant: str = "", token: str = ""
) -> str | int | None:
    """The bell: a worker applies due Stripe events, key after key by the fair claim, until none is due
    (`webhooks.services.process.stripe_events_run`). The arguments name the event that rang; a worker needs
    them only when eager (tests, the embedded mode: that event's key is applied in-line). `tenant` and `token`
    are read from messages queued before the fair claim and ignored."""
    if self.request.is_eager:
        if key:
            return stripe_events_process_key(key=key, eager=True)
        return stripe_event_process(event_id=event_id, eager=True) if event_id else None
    connections_check()
    try:
        return stripe_events_run()
    except (InterfaceError, OperationalError) as exc:
        # The connection died under the task (a database restart): drop it, and ring again when it is back.
        connections_close()
        raise self.retry(exc=exc, countdown=database_backoff_seconds(self.request.retries)) from exc


@shared_task(name="webhooks.tasks.requeue_stuck_stripe_events", acks_late=True)
def requeue_stuck_stripe_events() -> int:
    """Beat (every 30 s): due events whose task was lost, retries whose time came, events of dead workers."""
    connections_check()
    return stripe_events_requeue_due()


@shared_task(name="webhooks.tasks.stripe_events_prune", acks_late=True)
def stripe_events_prune_task() -> int:
    """Beat (hourly): Stripe events finished longer ago than WEBHOOK_RETENTION_DAYS pruned
    (webhooks.services.retention)."""
    connections_check()
    return stripe_events_prune()
