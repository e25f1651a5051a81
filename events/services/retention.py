"""Retention of deliveries to tenants' endpoints (`WEBHOOK_RETENTION_DAYS`, core.retention): a delivery that
succeeded or was given up (`failed`), whose last attempt (or, never attempted, its creation) is older than the
cutoff, is deleted in batches with its attempts' log.

Kept whatever their age: a delivery `pending` (due, or waiting for its next retry). A redelivery sets one back to
`pending` and its next attempt starts the age again. Nothing reads a finished delivery but the event's page
(`GET /events/{id}` lists its deliveries) and the back office: a delivery is made once, when its event is recorded,
so a pruned one is never made again, and a redelivery asked later makes a new one. The tenant events themselves
(`/events`) are kept."""

import logging

from django.db.models import Q

from core.retention import PRUNE_BATCH, retention_cutoff, rows_prune
from events.models import Delivery

logger = logging.getLogger(__name__)

PRUNABLE = (Delivery.Status.SUCCEEDED, Delivery.Status.FAILED)


def deliveries_prune(*, batch: int = PRUNE_BATCH) -> int:
    """Deletes the finished deliveries untouched for WEBHOOK_RETENTION_DAYS (none when it is 0), `batch` at a time,
    each batch in its own transaction; returns how many went."""
    cutoff = retention_cutoff()
    if cutoff is None:
        return 0
    rows = Delivery.objects.filter(
        Q(last_attempt_at__lt=cutoff) | Q(last_attempt_at__isnull=True, created_at__lt=cutoff),
        status__in=PRUNABLE,
    )
    pruned = rows_prune(rows, batch=batch)
    logger.info(
        "Retention pruned %d webhook deliver%s finished before %s.",
        pruned,
        "y" if pruned == 1 else "ies",
        cutoff.isoformat(),
        extra={"pruned": pruned, "table": Delivery._meta.db_table},
    )
    return pruned
