"""Per-tenant fairness of Stripe event processing: which project's share of the workers an event is applied in,
and the hand-over of a freed place to the project's next waiting events.

Intake never refuses Stripe (every verified delivery is stored and answered 200). What is fair is processing:
the tasks applying events take places in a pool of STRIPE_EVENT_TASKS_POOL (`core.fairness`), each project
STRIPE_EVENT_TASKS_PER_PROJECT of them whatever the others do, and the rest of the pool while no other project
holding fewer waits. So a project alone uses every place, and a project whose Stripe account bursts holds at
most the pool's places in the broker's queue and on the workers: another project's events are queued at once
(within its share) and wait at most behind those, not behind the backlog. The backlog waits its turn in
PostgreSQL. A task that ends gives its place back and hands it over (`core.fairness.share_hand_over`); the beat
sweep queues whatever is still due. While its project is alone in the pool (no other project holds a place or
waits for one), a task that ends takes its project's next waiting key on itself instead of queuing a task for
it (`stripe_events_turn_end`, for at most `webhooks.tasks.GO_ON_SECONDS`).
"""

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from core.cache import cache_get_many, cache_set
from core.fairness import share_hand_over, share_holders, share_release
from core.statements import Statement
from projects.models import Project
from webhooks.models import StripeEvent
from webhooks.services.process import (
    PLATFORM_SHARE,
    QUEUED_MARK_SECONDS,
    SHARE_KIND,
    SHARE_LEASE_SECONDS,
    key_place_take,
    queue_processing,
    queued_mark,
    share_name,
)
from webhooks.statements import due_filter

logger = logging.getLogger(__name__)

# A hand-over reads at most this many of a share's waiting events (keys) at once.
HAND_OVER_LOOK = 20
_TENANT_MAX = StripeEvent._meta.get_field("tenant").max_length or 40


def event_tenant(*, project: Project | None, body: dict[str, Any]) -> str:
    """The project an event is applied for: the project whose own Stripe account sent it; for the platform's
    account, the project its object names in `metadata.tollgate_project` (Tollgate writes it on every object
    it creates at Stripe), else "" (the platform's share)."""
    if project is not None:
        return str(project.pk)
    obj = (body.get("data") or {}).get("object") or {}
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    named = metadata.get("tollgate_project") if isinstance(metadata, dict) else None
    if isinstance(named, str) and 0 < len(named) <= _TENANT_MAX:
        return named
    return ""


def stripe_events_turn_end(
    *, tenant: str, token: str, key: str, go_on: bool = False
) -> tuple[str, str] | None:
    """A task of `tenant` ended its turn on `key`: gives its place back and hands the free places over, to the
    projects waiting for one, fewest places first: each queues its oldest waiting keys (due events, no task at
    work on them) until refused.

    `go_on`: the task may take its project's oldest waiting key on itself when no other project holds a place
    or waits for one (`core.fairness.share_hand_over`, `alone`): then it returns that key and the token of the
    place taken for it, and the task applies it next instead of ending. Nobody else's work waits behind it, and
    a burst's keys are applied without a Celery task queued, taken and ended for each. Else None."""
    share_release(kind=SHARE_KIND, tenant=share_name(tenant), token=token, what=key)
    if settings.STRIPE_EVENT_TASKS_PER_PROJECT <= 0:
        return None
    kept: list[tuple[str, str]] = []
    share_hand_over(
        kind=SHARE_KIND,
        queue_waiting=lambda share, alone: _queue_waiting(share, kept if go_on and alone else None),
        freed_by=share_name(tenant),
    )
    return kept[0] if kept else None


# The oldest due events of a tenant's keys, but those of `looking` (compiled once for each length of it).
_WAITING = Statement(
    lambda tenant, now, looking: (
        StripeEvent.objects.filter(due_filter(now), tenant=tenant)
        .exclude(ordering_key__in=looking)
        .order_by("received_at")
        .values_list("ordering_key", flat=True)[:HAND_OVER_LOOK]
    ),
    now=datetime,
    looking=list,
)


def _queue_waiting(share: str, kept: list[tuple[str, str]] | None) -> bool:
    """Queues the oldest waiting keys of a share until one is refused; whether it has keys left waiting. With
    `kept` (empty), the first key is not queued: its place is taken for the task that ended, and the key and
    the token are put in `kept`.

    Skipped: the keys whose task will still look for due events — a place is held for the key and its mark is
    set (`queue_processing`: the task clears it before its last look). A place alone is not enough: a task
    that looked its last still holds its place until it ends, and an event stored (or handed over) in between
    would wait for beat's sweep."""
    tenant = "" if share == PLATFORM_SHARE else share
    holders = list(dict.fromkeys(share_holders(kind=SHARE_KIND, tenant=share)))
    marked = cache_get_many([queued_mark(key) for key in holders]) if holders else {}
    looking = [key for key in holders if queued_mark(key) in marked]
    rows = _WAITING.rows(tenant=tenant, now=timezone.now(), looking=looking)
    for waiting_key in dict.fromkeys(rows):
        if kept is not None and not kept:
            token = key_place_take(waiting_key, tenant=tenant, lease_seconds=SHARE_LEASE_SECONDS)
            if token is None:
                return True
            # Marked as a queued key is: its next events ride on this task instead of queuing one.
            cache_set(queued_mark(waiting_key), 1, QUEUED_MARK_SECONDS)
            kept.append((waiting_key, token))
        elif not queue_processing("", waiting_key, tenant=tenant, force=True):
            return True
    return len(rows) == HAND_OVER_LOOK
