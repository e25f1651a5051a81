"""Per-endpoint fairness of outbound deliveries: which due delivery a free worker sends next.

PostgreSQL is the schedule (a pending delivery is due at its `next_attempt_at`); a Celery task is the bell that
wakes a worker, which then sends delivery after delivery, each taken by the fair claim (`core.claims`): the
endpoint with the fewest sends running first, then the oldest due delivery; and no endpoint more than all the
worker's processes but one at once. So an endpoint alone uses every process but one, and a slow or timing-out
endpoint (each send lasts at most OUTBOUND_WEBHOOK_TIMEOUT_SECONDS) never holds them all: another endpoint's
delivery finds a process free and is the next one taken. In eager mode (no broker, one process) deliveries are
sent at once.
"""

import logging
import time
from datetime import timedelta

from django.utils import timezone

from core.claims import BELLS, RUN_SECONDS, FairClaim, fair_claim, runners
from events.models import Delivery

logger = logging.getLogger(__name__)

_DELIVERIES = FairClaim(
    table=Delivery._meta.db_table,
    group="endpoint_id",
    due="w.status = %s AND (w.next_attempt_at IS NULL OR w.next_attempt_at <= %s)",
    running="status = %s AND sending_until > %s",
    running_count="COUNT(*)",
    oldest="w.next_attempt_at, w.id",
)


def endpoint_cap() -> int:
    """How many sends one endpoint may have running at once: the worker's processes but one (at least one)."""
    return max(1, runners() - 1)


def delivery_claim() -> str | None:
    """Takes the next delivery to send (the fair claim), leased for CLAIM_SECONDS: its id, or None."""
    from events.services.deliver import CLAIM_SECONDS  # deliver imports record, which imports this module

    now = timezone.now()
    until = now + timedelta(seconds=CLAIM_SECONDS)
    pending = Delivery.Status.PENDING
    return fair_claim(
        _DELIVERIES,
        sets="next_attempt_at = %s, sending_until = %s",
        set_params=[until, until],
        due_params=[pending, now],
        running_params=[pending, now],
        cap=endpoint_cap(),
    )


def deliveries_run(*, seconds: float = RUN_SECONDS) -> int:
    """Sends due deliveries, each taken by the fair claim, until none can be taken or `seconds` have passed;
    returns how many it sent."""
    from events.services.deliver import deliveries_due, delivery_send

    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < seconds:
        delivery_id = delivery_claim()
        if delivery_id is None:
            return sent
        delivery_send(delivery_id=delivery_id, claimed=True)
        sent += 1
    if deliveries_due(limit=1):
        deliveries_ring(1)
    return sent


def deliveries_ring(count: int) -> int:
    """Rings `count` workers for due deliveries; how many bells were queued (none while the broker is down: the
    beat sweep rings when it is back)."""
    from events.tasks import deliver_event

    for rung in range(count):
        try:
            deliver_event.delay()
        except Exception:
            logger.exception("Could not ring for deliveries; the sweep will.")
            return rung
    return count


def deliveries_queue(*, deliveries: list[tuple[str, str]]) -> int:
    """New deliveries (id, endpoint id) are due: eager, each is sent at once; else a worker is rung for each,
    up to BELLS (a worker sends until nothing is due). Returns how many sends or bells were queued."""
    from events.tasks import deliver_event

    if not deliver_event.app.conf.task_always_eager:  # the Celery app's: a test may point it at a real broker
        return deliveries_ring(min(len(deliveries), BELLS))
    queued = 0
    for delivery_id, _ in deliveries:
        try:
            deliver_event.delay(delivery_id)
        except Exception:
            logger.exception("Could not send delivery %s; the sweep will send it.", delivery_id)
            continue
        queued += 1
    return queued


def deliveries_sweep_queue() -> int:
    """Beat: rings for the deliveries due (retries whose time came, bells lost with the broker, sends whose
    worker died once their lease ran out), a bell per due delivery up to BELLS. Returns how many it queued."""
    from events.services.deliver import deliveries_due

    due = deliveries_due(limit=BELLS)
    return deliveries_queue(deliveries=[(pk, "") for pk in due])
