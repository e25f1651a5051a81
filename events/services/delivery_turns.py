"""Per-tenant fairness of outbound deliveries: at most OUTBOUND_WEBHOOK_DELIVERIES_PER_ENDPOINT deliveries to
one endpoint queued or being sent at once (places in the endpoint's share, `core.fairness`).

A slow or timing-out endpoint then holds at most that many workers (each for at most
OUTBOUND_WEBHOOK_TIMEOUT_SECONDS); its other deliveries wait their turn in PostgreSQL's schedule (pending, due),
and every other endpoint's deliveries find workers free. A delivery task that ends gives its place back and
queues the endpoint's next due deliveries; the beat sweep queues, endpoint by endpoint, what is due within the
free places. In eager mode (no broker, one process) deliveries are sent at once, without shares.
"""

import logging

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from core.fairness import share_holders, share_release, share_take
from events.models import Delivery

logger = logging.getLogger(__name__)

SHARE_KIND = "deliveries"
# A place of a queued task lapses this long after it was taken (a task lost with the broker frees it then, and the
# sweep queues what waits); its task renews it for SHARE_LEASE_SECONDS when it starts (a send lasts at most
# OUTBOUND_WEBHOOK_TIMEOUT_SECONDS).
QUEUED_LEASE_SECONDS = 30.0
SHARE_LEASE_SECONDS = 120.0
SWEEP_ENDPOINTS = 1000


def delivery_queue(*, delivery_id: str, endpoint_id: str) -> bool:
    """Queues the sending of a delivery in a place of its endpoint's share; False when the share is full (the
    delivery waits its turn: the endpoint's next freed place, or the sweep, queues it) or the broker is down."""
    from events.tasks import deliver_event  # the tasks module imports the delivery services

    if deliver_event.app.conf.task_always_eager:  # the Celery app's: a test may point it at a real broker
        try:
            deliver_event.delay(delivery_id)
        except Exception:
            logger.exception("Could not send delivery %s; the sweep will send it.", delivery_id)
            return False
        return True
    token = share_take(
        kind=SHARE_KIND,
        tenant=endpoint_id,
        what=delivery_id,
        cap=settings.OUTBOUND_WEBHOOK_DELIVERIES_PER_ENDPOINT,
        lease_seconds=QUEUED_LEASE_SECONDS,
    )
    if token is None:
        return False
    try:
        deliver_event.delay(delivery_id, endpoint_id, token)
    except Exception:  # the broker is down: the beat sweep sends it when it is back
        share_release(kind=SHARE_KIND, tenant=endpoint_id, token=token, what=delivery_id)
        logger.exception("Could not queue delivery %s; the sweep will send it.", delivery_id)
        return False
    return True


def deliveries_queue(*, deliveries: list[tuple[str, str]]) -> int:
    """Queues (delivery id, endpoint id) pairs in order, each endpoint's until its share is full; returns how
    many were queued."""
    full: set[str] = set()
    queued = 0
    for delivery_id, endpoint_id in deliveries:
        if endpoint_id in full:
            continue
        if delivery_queue(delivery_id=delivery_id, endpoint_id=endpoint_id):
            queued += 1
        else:
            full.add(endpoint_id)
    return queued


def endpoint_deliveries_queue_waiting(*, endpoint_id: str) -> int:
    """Queues the endpoint's oldest due deliveries into the places of its share free now (those being sent
    are not due: their claim moved their next attempt)."""
    cap = settings.OUTBOUND_WEBHOOK_DELIVERIES_PER_ENDPOINT
    holders = set(share_holders(kind=SHARE_KIND, tenant=endpoint_id))
    room = cap - len(holders) if cap > 0 else 100
    if room <= 0:
        return 0
    due = list(
        Delivery.objects.filter(
            endpoint_id=endpoint_id, status=Delivery.Status.PENDING, next_attempt_at__lte=timezone.now()
        )
        .exclude(pk__in=holders)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:room]
    )
    return deliveries_queue(deliveries=[(pk, endpoint_id) for pk in due])


def delivery_turn_end(*, endpoint_id: str, token: str, delivery_id: str) -> int:
    """A delivery task ended: gives its place back and queues the endpoint's next due deliveries."""
    share_release(kind=SHARE_KIND, tenant=endpoint_id, token=token, what=delivery_id)
    return endpoint_deliveries_queue_waiting(endpoint_id=endpoint_id)


def deliveries_sweep_queue() -> int:
    """Beat: queues every endpoint's due deliveries within its free places, the endpoints longest waiting first
    (one endpoint's backlog cannot crowd the others out of a sweep)."""
    from events.tasks import deliver_event

    if deliver_event.app.conf.task_always_eager:
        from events.services.deliver import deliveries_due

        return deliveries_queue(deliveries=[(pk, "") for pk in deliveries_due()])
    endpoints = (
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=timezone.now())
        .values("endpoint_id")
        .annotate(oldest=Min("next_attempt_at"))
        .order_by("oldest")
        .values_list("endpoint_id", flat=True)[:SWEEP_ENDPOINTS]
    )
    return sum(endpoint_deliveries_queue_waiting(endpoint_id=pk) for pk in endpoints)
