"""Retention of the inbox (`WEBHOOK_RETENTION_DAYS`, core.retention): Stripe events finished (`processed`, or
`ignored`: no handler) and unchanged since the cutoff are deleted in batches.

Kept whatever their age: an event not yet applied (`received`, `processing`: due, retrying, being applied) and a
`failed` one (given up, or held: it waits for an operator's replay). An event replayed is changed by its replay,
so it stays for the whole age again. Nothing else reads a finished event's row once it is that old: a
reconciliation reads Stripe and the mirrors, an `as_of` answer the entitlement records, and billing's handlers
ask the inbox only for an invoice's PaymentIntent, which applying the event recorded on the invoice already (and
which they read from Stripe otherwise). What the row still does is turn a second delivery of its event id away
(unique per account and event id): the age is at least 31 days, past the 30 days Stripe can send or list it."""

import logging

from django.db.models import F, QuerySet, Sum
from django.utils import timezone

from core.retention import PRUNE_BATCH, retention_cutoff, rows_prune
from webhooks.models import StripeEvent, StripeEventsPruned

logger = logging.getLogger(__name__)

PRUNABLE = (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED)


def stripe_events_prune(*, batch: int = PRUNE_BATCH) -> int:
    """Deletes the finished events unchanged for WEBHOOK_RETENTION_DAYS (none when it is 0), `batch` at a time,
    each batch in its own transaction; returns how many went. Their conflicts are added to `StripeEventsPruned`
    in the same transaction, so `/metrics`' counter of conflicts never goes back."""
    cutoff = retention_cutoff()
    if cutoff is None:
        return 0
    rows = StripeEvent.objects.filter(status__in=PRUNABLE, updated_at__lt=cutoff)
    pruned = rows_prune(rows, batch=batch, before_delete=_tally)
    logger.info(
        "Retention pruned %d Stripe event(s) finished before %s.",
        pruned,
        cutoff.isoformat(),
        extra={"pruned": pruned, "table": StripeEvent._meta.db_table},
    )
    return pruned


def _tally(batch: QuerySet[StripeEvent]) -> None:
    conflicts = batch.filter(conflicts__gt=0).aggregate(n=Sum("conflicts"))["n"] or 0
    StripeEventsPruned.objects.get_or_create(pk=1)
    StripeEventsPruned.objects.filter(pk=1).update(
        events=F("events") + batch.count(), conflicts=F("conflicts") + conflicts, updated_at=timezone.now()
    )
