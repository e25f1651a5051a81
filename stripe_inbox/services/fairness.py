"""Per-tenant fairness of Stripe event processing: which project's share of the workers an event is applied in,
and the hand-over of a freed place to the project's next waiting events.

Intake never refuses Stripe (every verified delivery is stored and answered 200). What is fair is processing:
the tasks applying one project's events take places in the project's share (STRIPE_EVENT_TASKS_PER_PROJECT at
once, `core.fairness`), so a project whose Stripe account bursts has at most that many tasks in the broker's
queue and on the workers; its other events wait their turn in PostgreSQL, and another project's events wait at
most behind those few tasks, not behind the backlog. A task that ends gives its place back and queues the
project's oldest waiting key; the beat sweep queues whatever is still due (within the shares).
"""

import logging
from typing import Any

from django.conf import settings
from django.utils import timezone

from core.fairness import share_holders, share_release
from projects.models import Project
from stripe_inbox.models import StripeEvent
from stripe_inbox.services.process import SHARE_KIND, due_filter, queue_processing, share_name

logger = logging.getLogger(__name__)

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


def stripe_events_turn_end(*, tenant: str, token: str, key: str) -> int:
    """A task of `tenant` ended: gives its place back, then queues the tenant's oldest waiting keys (due events,
    no task at work on them) into the places free now. Returns how many keys it queued."""
    share_release(kind=SHARE_KIND, tenant=share_name(tenant), token=token, what=key)
    cap = settings.STRIPE_EVENT_TASKS_PER_PROJECT
    if cap <= 0:
        return 0
    holders = set(share_holders(kind=SHARE_KIND, tenant=share_name(tenant)))
    room = cap - len(holders)
    if room <= 0:
        return 0
    waiting = (
        StripeEvent.objects.filter(due_filter(timezone.now()), tenant=tenant)
        .exclude(ordering_key__in=holders)
        .order_by("received_at")
        .values_list("ordering_key", flat=True)[: room * 20]
    )
    queued = 0
    for waiting_key in dict.fromkeys(waiting):
        if queued >= room or not queue_processing("", waiting_key, tenant=tenant, force=True):
            break
        queued += 1
    return queued
