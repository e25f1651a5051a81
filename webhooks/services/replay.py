"""Running stored events again (operators, `replay_webhooks`), and fetching from Stripe the events a lost
delivery never brought."""

from datetime import datetime
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from billing.handlers.registry import HANDLERS
from core.actors import Actor
from core.audit import audit_record
from projects.models import Project
from stripe_gateway.gateway import PLATFORM_ACCOUNT, gateway_for, platform_gateway
from webhooks.models import StripeEvent
from webhooks.services.process import queue_processing
from webhooks.services.receive import ordering_key, stripe_event_store


def stripe_event_replay(*, event: StripeEvent, actor: Actor | None = None, reason: str = "") -> None:
    """Runs a stored event through billing's handlers again (operators, `replay_webhooks`)."""
    if actor is not None:
        with transaction.atomic():
            audit_record(
                actor=actor,
                action="stripe_event.replayed",
                target=event,
                project=event.project,
                reason=reason,
                before={"status": event.status, "attempts": event.attempts},
            )
    # An event stored before ordering keys existed gets its key now.
    key = event.ordering_key or ordering_key(event.account, event.payload)
    StripeEvent.objects.filter(pk=event.pk).exclude(status=StripeEvent.Status.PROCESSING).update(
        status=StripeEvent.Status.RECEIVED, next_attempt_at=None, ordering_key=key, updated_at=timezone.now()
    )
    queue_processing(event.pk, key)


class FetchedEvents(NamedTuple):
    """What `stripe_events_fetch_missing` found: the events Stripe listed, those received before, and the missing
    ones stored now — of types Tollgate handles (queued to be applied), or of others (stored, ignored)."""

    listed: int
    already: int
    handled: int
    unhandled: int


def stripe_events_fetch_missing(*, project: Project | None, since: datetime) -> FetchedEvents:
    """Fetches the account's events since `since` from Stripe's /v1/events (every type: Stripe filters by at
    most 20) and stores those we never received (a delivery lost while Tollgate was down); each stored one is
    queued, and one of a type no handler takes ends `ignored`, as a delivered one would."""
    account = project.pk if project is not None else PLATFORM_ACCOUNT
    gateway = gateway_for(project) if project is not None else platform_gateway()
    handled = unhandled = 0
    # Stripe lists newest first; stored oldest first, so they are applied in the order they happened.
    listed = list(gateway.list_all("events", {"created": {"gte": int(since.timestamp())}, "limit": 100}))
    for body in reversed(listed):
        _, created = stripe_event_store(account=account, project=project, body=body)
        if created and body.get("type") in HANDLERS:
            handled += 1
        elif created:
            unhandled += 1
    return FetchedEvents(len(listed), len(listed) - handled - unhandled, handled, unhandled)
