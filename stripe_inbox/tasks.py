"""Stripe event processing tasks: an event id in, one service call, idempotent (acks_late).

Registered under the names they had in the app they came from (`webhooks.tasks.*`): tasks already queued and
beat's schedule name them so."""

import logging
import random

from celery import shared_task
from django.db import InterfaceError, OperationalError

from core.db import connections_check, connections_close
from core.fairness import share_renew
from stripe_inbox.services.fairness import stripe_events_turn_end
from stripe_inbox.services.process import (
    SHARE_KIND,
    SHARE_LEASE_SECONDS,
    share_name,
    stripe_event_process,
    stripe_events_process_key,
    stripe_events_requeue_due,
)

logger = logging.getLogger(__name__)

# A database that is down (restarting, failing over) is waited for: the task retries with backoff, and the
# beat sweep queues whatever is still due once it is back.
DATABASE_RETRIES = 30


def database_backoff_seconds(retries: int) -> float:
    """1 s, 2 s, 4 s … capped at a minute, with jitter so workers do not reconnect in step."""
    return float(min(2**retries, 60)) * random.uniform(0.8, 1.2)  # noqa: S311 (jitter)


@shared_task(
    name="webhooks.tasks.process_stripe_event", bind=True, acks_late=True, max_retries=DATABASE_RETRIES
)
def process_stripe_event(  # type: ignore[no-untyped-def]
    self, event_id: str, key: str = "", tenant: str = "", token: str = ""
) -> str | None:
    """Applies the due events of one ordering key (the event's, or `key`); see stripe_inbox.services.process.
    `token`: the task's place in the fair shares (stripe_inbox.services.fairness), given back when it ends (the
    retry after a lost database connection keeps it; the retry of a failed event is queued with none)."""
    eager = bool(self.request.is_eager)
    if not eager:
        connections_check()
    if token:
        share_renew(
            kind=SHARE_KIND,
            tenant=share_name(tenant),
            token=token,
            what=key,
            lease_seconds=SHARE_LEASE_SECONDS,
        )
    retrying = False
    try:
        if key:
            stripe_events_process_key(key=key, eager=eager)
            return None
        return stripe_event_process(event_id=event_id, eager=eager)
    except (InterfaceError, OperationalError) as exc:
        if eager:
            raise
        # The connection died under the task (a database restart): drop it, and try again when it is back.
        connections_close()
        retrying = True
        raise self.retry(exc=exc, countdown=database_backoff_seconds(self.request.retries)) from exc
    finally:
        if token and not retrying:
            _turn_end(tenant=tenant, token=token, key=key)


def _turn_end(*, tenant: str, token: str, key: str) -> None:
    """Gives the task's place back and hands it over (the waiting keys of a project); a failure here (the database gone)
    leaves the place to lapse and the waiting events to the sweep."""
    try:
        stripe_events_turn_end(tenant=tenant, token=token, key=key)
    except Exception:
        logger.exception("Could not hand the fair share of %s over; the sweep will.", share_name(tenant))


@shared_task(name="webhooks.tasks.requeue_stuck_stripe_events", acks_late=True)
def requeue_stuck_stripe_events() -> int:
    """Beat (every 30 s): due events whose task was lost, retries whose time came, events of dead workers."""
    connections_check()
    return stripe_events_requeue_due()
