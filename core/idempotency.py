"""`Idempotency-Key` for every unsafe API method, stored per caller with a fingerprint of the request.

Same caller + key + same request within the TTL → the first response is replayed (`Idempotent-Replayed: true`).
Same key with another request → 409 `idempotency_key_reused`; while the first is still running → 409
`idempotency_key_in_use`. Answers of 5xx, 409 in-use and 429 are not stored: the key is freed for a retry.
The claim is an INSERT on a unique constraint, so two concurrent requests with one key cannot both proceed.
"""

import hashlib
import json
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from core.errors import Conflict, InvalidRequest
from core.models import IdempotencyKey

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    content_type: str

    def to_response(self) -> HttpResponse:
        response = HttpResponse(self.body, status=self.status, content_type=self.content_type)
        response["Idempotent-Replayed"] = "true"
        return response


class IdempotentReplay(Exception):
    """Raised from the view's `initial()` to short-circuit it with the stored response."""

    def __init__(self, stored: StoredResponse) -> None:
        self.stored = stored
        super().__init__("idempotent replay")


def request_fingerprint(request: HttpRequest) -> str:
    """Method, path and body; JSON bodies are canonicalised so key order and whitespace don't matter."""
    raw = request.body
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode() if raw else b""
    except (ValueError, UnicodeDecodeError):
        body = raw
    digest = hashlib.sha256()
    for part in (request.method or "").encode(), request.path.rstrip("/").encode(), body:
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


def idempotency_begin(*, owner: str, key: str, request: HttpRequest) -> IdempotencyKey:
    """Claims `key` for this request, or raises IdempotentReplay / Conflict."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
            code="invalid_idempotency_key",
            param="Idempotency-Key",
        )
    fingerprint = request_fingerprint(request)
    now = timezone.now()
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(
                owner=owner,
                key=key,
                method=request.method or "",
                path=request.path[:500],
                fingerprint=fingerprint,
                created_at=now,
                locked_at=now,
            )
    except IntegrityError:
        pass

    existing = IdempotencyKey.objects.filter(owner=owner, key=key).first()
    if existing is None:  # purged between our INSERT and SELECT: one more try settles it
        return idempotency_begin(owner=owner, key=key, request=request)

    expired = existing.created_at < now - settings.IDEMPOTENCY_KEY_TTL
    abandoned = (
        existing.status == IdempotencyKey.Status.IN_PROGRESS
        and existing.locked_at is not None
        and existing.locked_at < now - settings.IDEMPOTENCY_LOCK_TIMEOUT
    )
    if expired or abandoned:
        # Compare-and-set on the row we read, so only one of several racing requests takes the key over.
        taken = IdempotencyKey.objects.filter(pk=existing.pk, created_at=existing.created_at).update(
            method=request.method or "",
            path=request.path[:500],
            fingerprint=fingerprint,
            status=IdempotencyKey.Status.IN_PROGRESS,
            response_status=None,
            response_body=None,
            response_content_type="",
            created_at=now,
            locked_at=now,
        )
        if taken:
            existing.refresh_from_db()
            return existing
        raise _in_use()

    if existing.fingerprint != fingerprint:
        raise Conflict(
            "This Idempotency-Key was already used with a different request.",
            code="idempotency_key_reused",
            param="Idempotency-Key",
        )
    if existing.status == IdempotencyKey.Status.IN_PROGRESS:
        raise _in_use()
    raise IdempotentReplay(
        StoredResponse(
            status=existing.response_status or 200,
            body=bytes(existing.response_body or b""),
            content_type=existing.response_content_type or "application/json",
        )
    )


def _in_use() -> Conflict:
    return Conflict(
        "A request with this Idempotency-Key is still being processed. Retry later.",
        code="idempotency_key_in_use",
        param="Idempotency-Key",
    )


def is_storable(status: int, body: bytes) -> bool:
    if status >= 500 or status == 429:
        return False
    return not (status == 409 and b"idempotency_key_in_use" in body)


def idempotency_finish(*, record: IdempotencyKey, status: int, body: bytes, content_type: str) -> None:
    """Stores the response for replay, or frees the key when the answer must not be replayed."""
    if not is_storable(status, body):
        IdempotencyKey.objects.filter(pk=record.pk, created_at=record.created_at).delete()
        return
    IdempotencyKey.objects.filter(pk=record.pk, created_at=record.created_at).update(
        status=IdempotencyKey.Status.COMPLETED,
        response_status=status,
        response_body=body,
        response_content_type=content_type,
        locked_at=None,
    )
