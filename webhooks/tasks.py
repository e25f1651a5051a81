"""Stripe event processing tasks: an event id in, one service call, idempotent (acks_late).

Registered under the names they had in the app they came from (`webhooks.tasks.*`): tasks already queued and
beat's schedule name them so."""

import logging
import random
import time

from celery import shared_task
from django.db import InterfaceError, OperationalError

from core.db import connections_check, connections_close
from core.fairness import share_renew
from webhooks.services.fairness import stripe_events_turn_end
from webhooks.services.process import (
    SHARE_KIND,
    SHARE_LEASE_SECONDS,
    share_name,
    stripe_event_process,
    stripe_events_process_key,
    stripe_events_requeue_due,
)
from webhooks.services.retention import stripe_events_prune

logger = logging.getLogger(__name__)

# A task goes on with its project's next waiting keys (while the project is alone in the pool) for at most this
# long from its start; then it ends its turn as any task does, and a hand-over queues the next key's task.
GO_ON_SECONDS = 30.0

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
    """Applies the due events of one ordering key (the event's, or `key`); see webhooks.services.process.
    `token`: the task's place in the fair shares (webhooks.services.fairness), given back when it ends (the
    retry after a lost database connection keeps it; the retry of a failed event is queued with none). While
    its project is alone in the pool, the task goes on with the project's next waiting keys, each in a place of
    its own, for at most GO_ON_SECONDS (`stripe_events_turn_end`)."""
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
    started = time.monotonic()
    retrying = False
    try:
        if not key:
            return stripe_event_process(event_id=event_id, eager=eager)
        while True:
            stripe_events_process_key(key=key, eager=eager)
            if not token:
                return None
            given, token = token, ""
            going_on = _turn_end(
                tenant=tenant, token=given, key=key, go_on=time.monotonic() - started < GO_ON_SECONDS
            )
            if going_on is None:
                return None
            key, token = going_on
    except (InterfaceError, OperationalError) as exc:
        if eager:
            raise
        # The connection died under the task (a database restart): drop it, and try again when it is back (with
        # the key the task was at and its place).
        connections_close()
        retrying = True
        raise self.retry(
            args=(event_id, key, tenant, token),
            exc=exc,
            countdown=database_backoff_seconds(self.request.retries),
        ) from exc
    finally:
        if token and not retrying:
            _turn_end(tenant=tenant, token=token, key=key)


def _turn_end(*, tenant: str, token: str, key: str, go_on: bool = False) -> tuple[str, str] | None:
    """Gives the task's place back and hands it over (the waiting keys of a project), or takes the next waiting
    key on (`go_on`: returned with its place's token); a failure here (the database gone) leaves the place to
    lapse and the waiting events to the sweep."""
    try:
        return stripe_events_turn_end(tenant=tenant, token=token, key=key, go_on=go_on)
    except Exception:
        logger.exception("Could not hand the fair share of %s over; the sweep will.", share_name(tenant))
        return None


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
