"""`Idempotency-Key` for every unsafe API method, stored per caller with a fingerprint of the request.

Same caller + key + same request within the TTL → the first response is replayed (`Idempotent-Replayed: true`).
Same key with another request → 409 `idempotency_key_reused`; while the first is still running → 409
`idempotency_key_in_use`. Answers of 5xx, 409 in-use and 429 are not stored: the key is left `failed`, free for
a retry, and the retry *continues the same operation*: the key's `Operation` (its identity and whether an
earlier attempt began) is handed to the services, which derive every Stripe idempotency key from it and, on a
resumed operation, finish what the first attempt started instead of judging the request against the state that
attempt left (Brandur Leach's "recovery points", Stripe's own keys keeping the result of a request that began).
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
from core.ids import derived_id
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


@dataclass(frozen=True)
class Operation:
    """One caller's operation across every attempt of its Idempotency-Key within the TTL.

    `identity` is stable from the first attempt on (caller, key, and when the key was first claimed, so a key
    reused after the TTL is another operation); `resumed` says an earlier attempt of it began, and so may have
    acted at Stripe before its answer was lost, its database failed or its process died."""

    identity: str
    resumed: bool

    def stripe_key(self, *parts: str) -> str:
        """The Stripe idempotency key of one write of this operation (`parts` name the write within it)."""
        return ":".join(("op", self.identity, *parts))

    def object_id(self, prefix: str) -> str:
        """The public id of the object this operation creates, the same on every attempt (so a retry finds
        the object, or sends Stripe the same request): a prefixed, unguessable id like `new_id`'s."""
        return derived_id(prefix, self.identity)


def operation_of(request: HttpRequest) -> Operation | None:
    """The operation the request's Idempotency-Key names (None: the request sent no key)."""
    operation: Operation | None = getattr(request, "tollgate_operation", None)
    return operation


def _operation(record: IdempotencyKey, *, resumed: bool) -> Operation:
    raw = "\0".join((record.owner, record.key, record.created_at.isoformat()))
    return Operation(identity=hashlib.sha256(raw.encode()).hexdigest()[:32], resumed=resumed)


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
    """Claims `key` for this request, or raises IdempotentReplay / Conflict. The request's `Operation` is
    attached to it (`operation_of`)."""
    if not key.strip():
        # `Idempotency-Key: $(uuidgen)` where uuidgen is missing: a key that names no operation is refused rather
        # than taken (a retry could not be told from a new request) or ignored (the caller believes it is safe).
        raise InvalidRequest(
            "Idempotency-Key is empty. Send a unique string for each operation (a UUID), or leave the header out.",
            code="idempotency_key_empty",
            param="Idempotency-Key",
        )
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
            code="invalid_idempotency_key",
            param="Idempotency-Key",
        )
    fingerprint = request_fingerprint(request)
    now = timezone.now()
    try:
        with transaction.atomic():
            record = IdempotencyKey.objects.create(
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
    else:
        request.tollgate_operation = _operation(record, resumed=False)  # type: ignore[attr-defined]
        return record

    existing = IdempotencyKey.objects.filter(owner=owner, key=key).first()
    if existing is None:  # purged between our INSERT and SELECT: one more try settles it
        return idempotency_begin(owner=owner, key=key, request=request)

    if existing.created_at < now - settings.IDEMPOTENCY_KEY_TTL:
        # Expired: the key starts another operation (a new identity). Compare-and-set on the row we read, so
        # only one of several racing requests takes the key over.
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
        if not taken:
            raise _in_use()
        existing.refresh_from_db()
        request.tollgate_operation = _operation(existing, resumed=False)  # type: ignore[attr-defined]
        return existing

    if existing.fingerprint != fingerprint:
        raise Conflict(
            "This Idempotency-Key was already used with a different request.",
            code="idempotency_key_reused",
            param="Idempotency-Key",
        )
    abandoned = (
        existing.status == IdempotencyKey.Status.IN_PROGRESS
        and existing.locked_at is not None
        and existing.locked_at < now - settings.IDEMPOTENCY_LOCK_TIMEOUT
    )
    if existing.status == IdempotencyKey.Status.FAILED or abandoned:
        # A retry of an attempt that ended without a storable answer (5xx, 429) or whose process died: it
        # continues that attempt's operation (same identity, `resumed`).
        taken = IdempotencyKey.objects.filter(
            pk=existing.pk, status=existing.status, locked_at=existing.locked_at
        ).update(status=IdempotencyKey.Status.IN_PROGRESS, locked_at=now)
        if not taken:
            raise _in_use()
        existing.refresh_from_db()
        request.tollgate_operation = _operation(existing, resumed=True)  # type: ignore[attr-defined]
        return existing
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
    """Stores the response for replay, or leaves the key `failed` (free for a retry, which continues the
    operation) when the answer must not be replayed. An attempt whose claim was taken over meanwhile (it ran
    past the lock timeout) changes nothing."""
    mine = IdempotencyKey.objects.filter(
        pk=record.pk, created_at=record.created_at, locked_at=record.locked_at
    )
    if not is_storable(status, body):
        mine.update(
            status=IdempotencyKey.Status.FAILED,
            response_status=None,
            response_body=None,
            response_content_type="",
            locked_at=None,
        )
        return
    mine.update(
        status=IdempotencyKey.Status.COMPLETED,
        response_status=status,
        response_body=body,
        response_content_type=content_type,
        locked_at=None,
    )


def idempotency_keys_purge() -> int:
    """Deletes idempotency keys older than IDEMPOTENCY_KEY_TTL; returns how many."""
    cutoff = timezone.now() - settings.IDEMPOTENCY_KEY_TTL
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
