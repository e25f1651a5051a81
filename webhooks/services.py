"""Stripe webhook intake and processing.

Intake (the request): verify the signature, store the event once (unique per Stripe account and event id,
race-safe), queue processing on commit, answer 200 — nothing else. Processing (a worker): claim the event by
compare-and-set so no two workers run it, dispatch by type, record status, attempts, error and timings.
"""

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from billing.gateway import WebhookSignatureInvalid, webhook_verify
from core.actors import Actor
from core.errors import InvalidRequest
from core.services import audit_record
from projects.models import Project
from webhooks import processors
from webhooks.models import PLATFORM_ACCOUNT, StripeEvent, StripeWebhookEndpoint

logger = logging.getLogger(__name__)

# A claim older than this belongs to a worker that died: another may take the event over.
STALE_CLAIM = timedelta(minutes=5)


class ProcessingFailed(Exception):
    """A processor raised; the event is queued again (or marked failed after the last attempt)."""


def _secrets(account: str, project: Project | None) -> list[str]:
    secrets: list[str] = []
    if project is not None:
        secrets += [s.strip() for s in project.stripe_webhook_secret.split(",") if s.strip()]
    elif settings.STRIPE_WEBHOOK_SECRET:
        secrets += [s.strip() for s in settings.STRIPE_WEBHOOK_SECRET.split(",") if s.strip()]
    stored = StripeWebhookEndpoint.objects.filter(account=account).first()
    if stored is not None and stored.secret:
        secrets.append(stored.secret)
    return secrets


def stripe_event_receive(
    *, project_id: str | None, payload: bytes, signature: str
) -> tuple[StripeEvent, bool]:
    """Verifies and stores one delivery. Returns (event, created); a duplicate delivery is not stored again."""
    project = None
    account = PLATFORM_ACCOUNT
    if project_id is not None:
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise InvalidRequest("Unknown project.", code="unknown_project")
        account = project.pk
    try:
        webhook_verify(payload=payload, header=signature, secrets=_secrets(account, project))
    except WebhookSignatureInvalid as exc:
        raise InvalidRequest(f"Invalid Stripe signature: {exc}.", code="invalid_signature") from exc
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("The body is not JSON.", code="invalid_payload") from exc
    if not isinstance(body, dict) or not str(body.get("id", "")).startswith("evt_") or not body.get("type"):
        raise InvalidRequest("The body is not a Stripe event.", code="invalid_payload")
    return stripe_event_store(account=account, project=project, body=body)


def stripe_event_store(
    *, account: str, project: Project | None, body: dict[str, Any]
) -> tuple[StripeEvent, bool]:
    """Stores an event once per (account, event id) — race-safe — and queues its processing on commit."""
    try:
        with transaction.atomic():
            event = StripeEvent.objects.create(
                account=account,
                project=project,
                stripe_event_id=body["id"],
                type=str(body["type"])[:100],
                api_version=str(body.get("api_version") or "")[:50],
                stripe_created=int(body.get("created") or 0),
                payload=body,
            )
            transaction.on_commit(lambda: queue_processing(event.pk))
            return event, True
    except IntegrityError:
        return StripeEvent.objects.get(account=account, stripe_event_id=body["id"]), False


def stripe_events_fetch_missing(*, project: Project | None, since: datetime) -> int:
    """Fetches the account's events since `since` from Stripe's /v1/events and stores those we never received
    (a delivery lost while Tollgate was down). Returns how many were missing."""
    from billing.gateway import gateway_for, platform_gateway

    account = project.pk if project is not None else PLATFORM_ACCOUNT
    gateway = gateway_for(project) if project is not None else platform_gateway()
    missing = 0
    for body in gateway.list_all("events", {"created": {"gte": int(since.timestamp())}, "limit": 100}):
        _, created = stripe_event_store(account=account, project=project, body=body)
        missing += int(created)
    return missing


def queue_processing(event_id: str) -> None:
    """Queues processing. A broker outage (or, in eager mode, a processing failure) must not fail the caller:
    the event is stored, its status says what happened, and the beat sweep queues it again."""
    from webhooks.tasks import process_stripe_event

    try:
        process_stripe_event.delay(event_id)
    except Exception:
        logger.exception("Could not queue Stripe event %s; the sweep will retry it.", event_id)


def stripe_event_claim(*, event_id: str) -> StripeEvent | None:
    """Takes the event for this worker: one compare-and-set UPDATE … RETURNING (a single round trip and commit),
    matching a `received` event or one whose previous claim went stale (its worker died). It runs once per
    event on every worker's hot path, so the row is read back without the ORM's query machinery."""
    now = timezone.now()
    fields = StripeEvent._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields if field.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {StripeEvent._meta.db_table} SET status = %s, attempts = attempts + 1, "  # noqa: S608 (names from the model)
            "processing_started_at = %s, updated_at = %s "
            f"WHERE id = %s AND (status = %s OR (status = %s AND processing_started_at < %s)) RETURNING {columns}",
            [
                StripeEvent.Status.PROCESSING,
                now,
                now,
                event_id,
                StripeEvent.Status.RECEIVED,
                StripeEvent.Status.PROCESSING,
                now - STALE_CLAIM,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    values = [
        field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
        for field, value in zip(fields, row, strict=True)
    ]
    return StripeEvent.from_db(connection.alias, [field.attname for field in fields], values)


def stripe_event_process(*, event_id: str, final_attempt: bool = True) -> str | None:
    """Processes a stored event once. Returns its final status, or None when another worker has it."""
    event = stripe_event_claim(event_id=event_id)
    if event is None:
        return None
    handler = processors.PROCESSORS.get(event.type)
    if handler is None:
        _finish(event, StripeEvent.Status.IGNORED)
        return StripeEvent.Status.IGNORED
    try:
        handler(event)
    except Exception as exc:
        logger.warning(
            "Processing %s %s failed: %s", event.type, event.stripe_event_id, exc.__class__.__name__
        )
        status = StripeEvent.Status.FAILED if final_attempt else StripeEvent.Status.RECEIVED
        _finish(event, status, error=f"{exc.__class__.__name__}: {exc}"[:2000])
        if final_attempt:
            return StripeEvent.Status.FAILED  # visible in admin, replayable; nothing left to retry
        raise ProcessingFailed(str(exc)) from exc
    _finish(event, StripeEvent.Status.PROCESSED)
    return StripeEvent.Status.PROCESSED


def _finish(event: StripeEvent, status: str, error: str = "") -> None:
    """Records the outcome of a claimed event (one plain UPDATE: this runs once per event on the hot path
    of every worker, so it skips the ORM's query building)."""
    now = timezone.now()
    done = now if status in (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED) else None
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {StripeEvent._meta.db_table} SET status = %s, last_error = %s, updated_at = %s, "  # noqa: S608 (table name from the model)
            "processed_at = COALESCE(%s, processed_at) WHERE id = %s AND status = %s",
            [status, error, now, done, event.pk, StripeEvent.Status.PROCESSING],
        )


def stripe_event_replay(*, event: StripeEvent, actor: Actor | None = None, reason: str = "") -> None:
    """Runs a stored event through the processors again (operators, `replay_webhooks`)."""
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
    StripeEvent.objects.filter(pk=event.pk).exclude(status=StripeEvent.Status.PROCESSING).update(
        status=StripeEvent.Status.RECEIVED, updated_at=timezone.now()
    )
    queue_processing(event.pk)


def stripe_events_requeue_stuck(*, older_than: timedelta = timedelta(minutes=10)) -> int:
    """Beat: queues again events left `received` (a lost task) or `processing` (a dead worker)."""
    cutoff = timezone.now() - older_than
    stuck = list(
        StripeEvent.objects.filter(
            Q(status=StripeEvent.Status.RECEIVED, updated_at__lt=cutoff)
            | Q(status=StripeEvent.Status.PROCESSING, processing_started_at__lt=cutoff)
        ).values_list("pk", flat=True)[:1000]
    )
    for event_id in stuck:
        queue_processing(event_id)
    return len(stuck)
