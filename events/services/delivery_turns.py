"""Per-tenant fairness of outbound deliveries: each delivery queued or being sent holds a place in a pool of
OUTBOUND_WEBHOOK_DELIVERIES_POOL (`core.fairness`); an endpoint gets OUTBOUND_WEBHOOK_DELIVERIES_PER_ENDPOINT of
them whatever the others do, and more while no other endpoint holding fewer waits.

So an endpoint alone uses the whole pool, and a slow or timing-out endpoint holds at most the pool's places
(each for at most OUTBOUND_WEBHOOK_TIMEOUT_SECONDS): with workers beyond the pool, every other endpoint's
deliveries find one free. Its other deliveries wait their turn in PostgreSQL's schedule (pending, due). A
delivery task that ends gives its place back and hands it over (`core.fairness.share_hand_over`); the beat sweep
queues, endpoint by endpoint, what is due. In eager mode (no broker, one process) deliveries are sent at once,
without shares.
"""

import logging

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from core.fairness import share_hand_over, share_holders, share_release, share_take
from events.models import Delivery

logger = logging.getLogger(__name__)

SHARE_KIND = "deliveries"
# A place of a queued task lapses this long after it was taken (a task lost with the broker frees it then, and the
# sweep queues what waits); its task renews it for SHARE_LEASE_SECONDS when it starts (a send lasts at most
# OUTBOUND_WEBHOOK_TIMEOUT_SECONDS).
QUEUED_LEASE_SECONDS = 30.0
SHARE_LEASE_SECONDS = 120.0
SWEEP_ENDPOINTS = 1000
# A hand-over reads at most this many of an endpoint's due deliveries at once.
HAND_OVER_LOOK = 20


def delivery_queue(*, delivery_id: str, endpoint_id: str) -> bool:
    """Queues the sending of a delivery in a place of the pool for its endpoint; False when refused (the
    delivery waits its turn: the next place freed, or the sweep, queues it) or the broker is down."""
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
        pool=settings.OUTBOUND_WEBHOOK_DELIVERIES_POOL,
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
    """Queues (delivery id, endpoint id) pairs in order, each endpoint's until the pool refuses one; returns how
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


def endpoint_deliveries_queue_waiting(*, endpoint_id: str) -> tuple[int, bool]:
    """Queues the endpoint's oldest due deliveries until one is refused (those being sent are not due: their
    claim moved their next attempt): how many it queued, and whether it has due deliveries left waiting."""
    holders = set(share_holders(kind=SHARE_KIND, tenant=endpoint_id))
    due = list(
        Delivery.objects.filter(
            endpoint_id=endpoint_id, status=Delivery.Status.PENDING, next_attempt_at__lte=timezone.now()
        )
        .exclude(pk__in=holders)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:HAND_OVER_LOOK]
    )
    for queued, pk in enumerate(due):
        if not delivery_queue(delivery_id=pk, endpoint_id=endpoint_id):
            return queued, True
    return len(due), len(due) == HAND_OVER_LOOK


def delivery_turn_end(*, endpoint_id: str, token: str, delivery_id: str) -> None:
    """A delivery task ended: gives its place back and hands the free places over, to the endpoints waiting for
    one, fewest places first."""
    share_release(kind=SHARE_KIND, tenant=endpoint_id, token=token, what=delivery_id)
    share_hand_over(
        kind=SHARE_KIND,
        queue_waiting=lambda endpoint, _: endpoint_deliveries_queue_waiting(endpoint_id=endpoint)[1],
    )


def deliveries_sweep_queue() -> int:
    """Beat: queues every endpoint's due deliveries until the pool refuses one of its, the endpoints longest
    waiting first (one endpoint's backlog cannot crowd the others out of a sweep). Returns how many it queued."""
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
    return sum(endpoint_deliveries_queue_waiting(endpoint_id=pk)[0] for pk in endpoints)
