"""Outbound events: what happened in a project, delivered signed to the project's endpoints.

`event_record` runs inside the transaction of the change it describes (so an event exists iff the change
does), numbers the event per project, and creates one delivery per matching endpoint. Deliveries are sent by
workers after commit; failures are retried with exponential backoff and jitter for up to three days on a
schedule kept in the database (`next_attempt_at`, swept by beat), never as broker countdowns.
"""

import ipaddress
import json
import logging
import random
import socket
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_record
from core.db import in_transaction
from core.errors import InvalidRequest
from core.ids import random_token
from projects.models import Project
from webhooks.models import Delivery, DeliveryAttempt, Event, EventSequence, WebhookEndpoint
from webhooks.signing import signature_header

logger = logging.getLogger(__name__)

EVENT_TYPES = (
    "payment.succeeded",
    "payment.failed",
    "payment.requires_action",
    "payment.expired",
    "payment.refunded",
    "checkout.completed",
    "checkout.expired",
    "subscription.created",
    "subscription.updated",
    "subscription.canceled",
    "subscription.past_due",
    "invoice.paid",
    "invoice.payment_failed",
    "entitlements.updated",
    "usage.threshold_reached",
    "credits.low",
    "webhook_endpoint.disabled",
)
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
CLAIM_SECONDS = 60  # a claimed delivery is not sent again by another worker within this lease
MAX_RESPONSE_BODY = 2048


# --- endpoints ----------------------------------------------------------------------------------------------


def _new_secret() -> str:
    return f"whsec_{random_token(32)}"


def endpoint_url_validate(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in {"http", "https"} or not host:
        raise InvalidRequest("url must be an absolute http(s) URL.", code="invalid_url", param="url")
    if parts.scheme == "http" and (settings.OUTBOUND_WEBHOOK_REQUIRE_HTTPS or host not in LOCAL_HOSTS):
        raise InvalidRequest(
            "url must use https (http is allowed only for localhost in development).",
            code="https_required",
            param="url",
        )
    return url


def events_validate(events: list[str]) -> list[str]:
    if not events:
        raise InvalidRequest(
            'events must list event types, or be ["*"].', code="parameter_missing", param="events"
        )
    unknown = [e for e in events if e != "*" and e not in EVENT_TYPES]
    if unknown:
        raise InvalidRequest(f"Unknown event type {unknown[0]!r}.", code="unknown_event_type", param="events")
    return ["*"] if "*" in events else sorted(set(events))


def endpoint_create(
    *,
    project: Project,
    actor: Actor,
    url: str,
    events: list[str],
    description: str = "",
    enabled: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """Creates an endpoint; returns it with its signing secret (shown this once)."""
    endpoint_url_validate(url)
    secret = _new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            project=project,
            url=url,
            events=events_validate(events),
            description=description,
            enabled=enabled,
            secret=secret,
        )
        audit_record(
            actor=actor,
            action="webhook_endpoint.created",
            target=endpoint,
            project=project,
            after={"url": url, "events": endpoint.events},
        )
    return endpoint, secret


def endpoint_update(*, endpoint: WebhookEndpoint, actor: Actor, **changes: Any) -> WebhookEndpoint:
    if "url" in changes:
        endpoint_url_validate(changes["url"])
    if "events" in changes:
        changes["events"] = events_validate(changes["events"])
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        before = {field: getattr(locked, field) for field in changes}
        for field, value in changes.items():
            setattr(locked, field, value)
        if changes.get("enabled") is True:
            locked.failing_since = None
            locked.disabled_reason = ""
        locked.save()
        audit_record(
            actor=actor,
            action="webhook_endpoint.updated",
            target=locked,
            project=locked.project,
            before=before,
            after=changes,
        )
    return locked


def endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="webhook_endpoint.deleted",
            target=endpoint,
            project=endpoint.project,
            before={"url": endpoint.url},
        )
        endpoint.delete()


def endpoint_roll_secret(
    *, endpoint: WebhookEndpoint, actor: Actor, overlap_seconds: int | None = None
) -> tuple[WebhookEndpoint, str]:
    """A new secret; the old one stays valid (both signatures are sent) for `overlap_seconds`."""
    overlap = settings.OUTBOUND_WEBHOOK_SECRET_OVERLAP_SECONDS if overlap_seconds is None else overlap_seconds
    secret = _new_secret()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret = locked.secret if overlap > 0 else ""
        locked.previous_secret_expires_at = (
            timezone.now() + timedelta(seconds=overlap) if overlap > 0 else None
        )
        locked.secret = secret
        locked.save()
        audit_record(
            actor=actor,
            action="webhook_endpoint.secret_rolled",
            target=locked,
            project=locked.project,
            after={"overlap_seconds": overlap},
        )
    return locked, secret


# --- events -------------------------------------------------------------------------------------------------


def event_record(
    *,
    project: Project,
    type: str,
    data_object: dict[str, Any],
    previous_attributes: dict[str, Any] | None = None,
) -> Event:
    """Records a domain event in the caller's transaction and queues its deliveries on commit."""
    if type not in EVENT_TYPES:
        raise ValueError(f"Unknown event type {type!r}")
    if not in_transaction():
        raise RuntimeError("event_record must run inside the transaction of the change it records.")
    event = Event.objects.create(
        project=project,
        type=type,
        sequence=_next_sequence(project.pk),
        data={"object": data_object},
        previous_attributes=previous_attributes,
    )
    _deliveries_create(event)
    return event


def _next_sequence(project_id: str) -> int:
    """The project's next event number: one UPDATE … RETURNING (the row stays locked until the caller's
    transaction ends, so numbers follow commit order); the row is created on the project's first event."""
    table = EventSequence._meta.db_table
    for _ in range(2):
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET last = last + 1 WHERE project_id = %s RETURNING last",  # noqa: S608 (table name from the model)
                [project_id],
            )
            row = cursor.fetchone()
        if row is not None:
            return int(row[0])
        EventSequence.objects.get_or_create(project_id=project_id)
    raise RuntimeError(f"No event sequence for project {project_id}.")


def _deliveries_create(event: Event, endpoints: list[WebhookEndpoint] | None = None) -> list[Delivery]:
    if endpoints is None:
        endpoints = [
            e
            for e in WebhookEndpoint.objects.filter(project=event.project, enabled=True)
            if e.wants(event.type)
        ]
    now = timezone.now()
    deliveries = []
    for endpoint in endpoints:
        delivery, created = Delivery.objects.get_or_create(
            event=event, endpoint=endpoint, defaults={"project": event.project, "next_attempt_at": now}
        )
        if not created:
            Delivery.objects.filter(pk=delivery.pk).update(
                status=Delivery.Status.PENDING, next_attempt_at=now
            )
        deliveries.append(delivery)
    ids = [d.pk for d in deliveries]
    if ids:
        transaction.on_commit(lambda: _queue(ids))
    return deliveries


def _queue(delivery_ids: list[str]) -> None:
    from webhooks.outbound_tasks import deliver_event  # the tasks module imports this one

    for delivery_id in delivery_ids:
        try:
            deliver_event.delay(delivery_id)
        except Exception:  # the broker is down: the beat sweep sends it when it is back
            logger.exception("Could not queue delivery %s; the sweep will send it.", delivery_id)


def event_redeliver(*, event: Event) -> list[Delivery]:
    """Sends the event again to every enabled endpoint that wants it (a new delivery, or a reset one)."""
    with transaction.atomic():
        return _deliveries_create(event)


def event_payload(event: Event) -> dict[str, Any]:
    """The event as delivered (signed) to endpoints: its API representation."""
    from webhooks.representations import EventOutput

    # to_representation, as `EventOutput.data` is its event's `data` field to the type checker.
    return EventOutput().to_representation(event)


# --- delivery -----------------------------------------------------------------------------------------------


class DestinationNotAllowed(Exception):
    pass


def _check_destination(url: str) -> None:
    """SSRF guard: with private addresses disallowed, every address the host resolves to must be public."""
    if settings.OUTBOUND_WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        return
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(
            parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP
        )
    except socket.gaierror as exc:
        raise DestinationNotAllowed(f"cannot resolve {parts.hostname}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise DestinationNotAllowed(f"{parts.hostname} resolves to a non-public address")


def retry_delay(attempts: int) -> timedelta:
    """30 s doubling per attempt, capped at 6 h, ±20% jitter so a recovering receiver is not stampeded."""
    base = min(30 * 2 ** max(attempts - 1, 0), 6 * 3600)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))  # noqa: S311 (jitter, not security)


def delivery_send(*, delivery_id: str) -> str | None:
    """Sends one due delivery (claimed so no other worker sends it at the same time); returns its status."""
    now = timezone.now()
    claimed = Delivery.objects.filter(
        Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True),
        pk=delivery_id,
        status=Delivery.Status.PENDING,
    ).update(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("event", "endpoint", "project").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED, next_attempt_at=None)
        return Delivery.Status.FAILED
    body = json.dumps(event_payload(delivery.event), separators=(",", ":")).encode()
    secrets = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        secrets.append(endpoint.previous_secret)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Tollgate-Webhooks/1.0",
        "Tollgate-Event-Id": delivery.event_id,
        "Tollgate-Signature": signature_header(body=body, secrets=secrets, timestamp=int(time.time())),
    }
    status_code, response_body, error = None, "", ""
    started = time.perf_counter()
    try:
        _check_destination(endpoint.url)
        with requests.post(
            endpoint.url,
            data=body,
            headers=headers,
            timeout=settings.OUTBOUND_WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
            stream=True,
        ) as response:
            status_code = response.status_code
            response_body = response.raw.read(MAX_RESPONSE_BODY, decode_content=True).decode(
                "utf-8", "replace"
            )
    except DestinationNotAllowed as exc:
        error = f"destination not allowed: {exc}"
    except requests.RequestException as exc:
        error = f"{exc.__class__.__name__}"[:500]
    latency_ms = int((time.perf_counter() - started) * 1000)
    return _delivery_record(
        delivery, status_code=status_code, body=response_body, error=error, latency_ms=latency_ms
    )


def _delivery_record(
    delivery: Delivery, *, status_code: int | None, body: str, error: str, latency_ms: int
) -> str:
    now = timezone.now()
    ok = status_code is not None and 200 <= status_code < 300
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            delivery=delivery,
            attempted_at=now,
            status_code=status_code,
            latency_ms=latency_ms,
            response_body=body[:MAX_RESPONSE_BODY],
            error=error,
        )
        attempts = delivery.attempts + 1
        if ok:
            status, next_at = Delivery.Status.SUCCEEDED, None
            WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).exclude(failing_since=None).update(
                failing_since=None
            )
        else:
            next_at = now + retry_delay(attempts)
            give_up = next_at > delivery.created_at + timedelta(hours=settings.OUTBOUND_WEBHOOK_RETRY_HOURS)
            status = Delivery.Status.FAILED if give_up else Delivery.Status.PENDING
            next_at = None if give_up else next_at
            _endpoint_failed(delivery.endpoint_id, now)
        Delivery.objects.filter(pk=delivery.pk).update(
            status=status, attempts=F("attempts") + 1, last_attempt_at=now, next_attempt_at=next_at
        )
    return status


def _endpoint_failed(endpoint_id: str, now: Any) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint_id, failing_since=None).update(failing_since=now)
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    limit = timedelta(hours=settings.OUTBOUND_WEBHOOK_DISABLE_AFTER_HOURS)
    if endpoint.enabled and endpoint.failing_since and endpoint.failing_since <= now - limit:
        endpoint.enabled = False
        endpoint.disabled_reason = (
            f"Every delivery failed for {settings.OUTBOUND_WEBHOOK_DISABLE_AFTER_HOURS} hours."
        )
        endpoint.save(update_fields=["enabled", "disabled_reason", "updated_at"])
        audit_record(
            actor=Actor.system("webhook delivery"),
            action="webhook_endpoint.disabled",
            target=endpoint,
            project=endpoint.project,
            reason=endpoint.disabled_reason,
            before={"enabled": True},
            after={"enabled": False},
        )
        from webhooks.representations import EndpointOutput

        event_record(
            project=endpoint.project,
            type="webhook_endpoint.disabled",
            data_object=dict(EndpointOutput(endpoint).data),
        )


def deliveries_due(*, limit: int = 1000) -> list[str]:
    return list(
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
