"""A project's webhook endpoints: create, change, delete, roll the signing secret (each audited)."""

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_record
from core.errors import InvalidRequest
from core.ids import random_token
from events.models import WebhookEndpoint
from events.types import EVENT_TYPES
from projects.models import Project

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


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
