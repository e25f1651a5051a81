"""Sending a tenant event's deliveries: signed, claimed so one worker sends each, retried with exponential
backoff and jitter for up to three days on a schedule kept in the database (`next_attempt_at`, swept by beat),
never as broker countdowns. An endpoint failing for a day is disabled, and says so (`webhook_endpoint.disabled`).
"""

import ipaddress
import json
import random
import socket
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_record
from events.models import Delivery, DeliveryAttempt, WebhookEndpoint
from events.representations import EndpointOutput, event_payload
from events.services.record import event_record
from events.signing import signature_header

CLAIM_SECONDS = 60  # a claimed delivery is not sent again by another worker within this lease
MAX_RESPONSE_BODY = 2048


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


def delivery_send(*, delivery_id: str, claimed: bool = False) -> str | None:
    """Sends one due delivery (claimed so no other worker sends it at the same time: here, unless the caller
    `claimed` it already, `events.services.delivery_turns`); returns its status."""
    now = timezone.now()
    if not claimed:
        until = now + timedelta(seconds=CLAIM_SECONDS)
        if not Delivery.objects.filter(
            Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True),
            pk=delivery_id,
            status=Delivery.Status.PENDING,
        ).update(next_attempt_at=until, sending_until=until):
            return None
    delivery = Delivery.objects.select_related("event", "endpoint", "project").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.FAILED, next_attempt_at=None, sending_until=None
        )
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
            status=status,
            attempts=F("attempts") + 1,
            last_attempt_at=now,
            next_attempt_at=next_at,
            sending_until=None,
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
