"""Queueing the processing of stored events: one task per ordering key with events due, and the beat sweep that
queues the keys whose task was lost."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.cache import cache_add, cache_delete_many
from stripe_inbox.models import StripeEvent

logger = logging.getLogger(__name__)

# An event not yet taken this long after it was stored (or put back) lost its task: the sweep queues it again.
QUEUE_SETTLE = timedelta(seconds=30)


def queue_processing(event_id: str, key: str = "", *, force: bool = False) -> None:
    """Queues processing. A broker outage (or, in eager mode, a processing failure) must not fail the caller:
    the event is stored, its status says what happened, and the beat sweep queues it again.

    A key with a task queued or running gets no second one: a checkout's ten events arrive together, and one
    task applies them all, since the task drains its key before it ends. The mark is cleared by the task that
    drained the key, after it let go of the key and before its last look for due events, so an event stored
    from then on queues a task of its own; a mark whose task was lost expires. The sweep (`force`) queues
    whatever the marks say."""
    from stripe_inbox.tasks import process_stripe_event

    if (
        key
        and not force
        and not settings.CELERY_TASK_ALWAYS_EAGER
        and cache_add(queued_mark(key), 1, QUEUED_MARK_SECONDS) is False
    ):
        return
    try:
        process_stripe_event.delay(event_id, key)
    except Exception:
        if key:
            cache_delete_many([queued_mark(key)])
        logger.exception("Could not queue Stripe event %s; the sweep will retry it.", event_id)


QUEUED_MARK_SECONDS = 60


def queued_mark(key: str) -> str:
    return f"stripe-events-queued:{key}"


def due_filter(now: datetime) -> Q:
    return Q(status=StripeEvent.Status.RECEIVED) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


def stripe_events_requeue_due(*, limit: int = 1000) -> int:
    """Beat: queues every key that has a due event nobody is applying — a task lost with the broker, a retry
    whose time came, an event whose worker died (taken back by the next holder of the key's lock). Keys whose
    worker is alive turn the task away at once. Returns how many keys were queued."""
    now = timezone.now()
    settle = now - QUEUE_SETTLE
    keys = list(
        StripeEvent.objects.filter(
            (
                due_filter(now)
                & (Q(updated_at__lt=settle) | Q(next_attempt_at__isnull=False, next_attempt_at__lte=now))
            )
            | Q(status=StripeEvent.Status.PROCESSING, processing_started_at__lt=settle)
        )
        .values_list("ordering_key", flat=True)
        .order_by()  # the model's ordering (received_at) would make DISTINCT one row per event, not per key
        .distinct()[:limit]
    )
    for key in keys:
        queue_processing("", key, force=True)
    return len(keys)
