"""Retention of the webhooks kept as records (Stripe's events in, the deliveries to tenants out): the age past
which a finished one may go (`WEBHOOK_RETENTION_DAYS`), and the batched delete both prunes share.

Each batch is one transaction: the rows are picked by the caller's filter with `LIMIT`, locked (`FOR UPDATE SKIP
LOCKED` on PostgreSQL: a row a worker or an operator is changing at that moment is left for the next run), and
deleted by their primary keys and the filter again, so a row that stopped matching the filter before it was
locked (a replay set it back to work) is never deleted. A run deletes at most MAX_BATCHES batches: a first run on years of
rows ends within minutes, and the next run goes on where it stopped.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

# Stripe delivers an event (its retries, a resend) and lists it (`/v1/events`, what `replay_webhooks
# --fetch-missing` reads) for 30 days after it made it; the stored row, unique per account and event id, is what
# turns a second delivery of the id away. It outlives that window by a day at least.
MIN_DAYS = 31
PRUNE_BATCH = 500  # rows per batch, each batch its own transaction
MAX_BATCHES = 200  # per run and table: 100,000 rows, the rest at the next run


def retention_cutoff() -> datetime | None:
    """The moment before which a finished webhook may be pruned, or None when retention is off (0 days)."""
    days: int = settings.WEBHOOK_RETENTION_DAYS
    if days <= 0:
        return None
    if days < MIN_DAYS:
        raise ImproperlyConfigured(f"WEBHOOK_RETENTION_DAYS must be 0 or at least {MIN_DAYS}, not {days}.")
    return timezone.now() - timedelta(days=days)


def rows_prune(
    rows: QuerySet[Any],
    *,
    batch: int = PRUNE_BATCH,
    max_batches: int = MAX_BATCHES,
    before_delete: Callable[[QuerySet[Any]], None] | None = None,
) -> int:
    """Deletes the rows of `rows` (a filtered queryset) batch after batch; returns how many went. `before_delete`
    is given each batch (a queryset of its rows) inside its transaction, the rows locked, before they go."""
    deleted = 0
    for _ in range(max_batches):
        with transaction.atomic(durable=True):
            picked = list(
                rows.order_by().select_for_update(skip_locked=True).values_list("pk", flat=True)[:batch]
            )
            if picked:
                # Filtered again (SQLite locks no row); the cascade (a delivery's attempts) goes with them.
                chosen = rows.filter(pk__in=picked)
                if before_delete is not None:
                    before_delete(chosen)
                _, per_model = chosen.delete()
                deleted += per_model.get(rows.model._meta.label, 0)
        if len(picked) < batch:
            break
    return deleted
