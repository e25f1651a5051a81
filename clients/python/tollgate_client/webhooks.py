"""Verify and parse a Tollgate webhook delivery.

    event = construct_event(request.body, request.headers["Tollgate-Signature"], secret)

`Tollgate-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` — during a secret roll two `v1` values are sent,
one per valid secret; pass either secret (or a list of both). Deliveries older than `tolerance` seconds are
refused, so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable

from tollgate_client.types import Event

__all__ = ["Event", "SignatureVerificationError", "construct_event", "verify_signature"]


class SignatureVerificationError(Exception):
    """The delivery is not from Tollgate with this secret, or is too old."""


def _parse_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError as exc:
                raise SignatureVerificationError("Malformed Tollgate-Signature timestamp.") from exc
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureVerificationError("Malformed Tollgate-Signature header.")
    return timestamp, signatures


def verify_signature(
    payload: bytes | str, header: str, secret: str | Iterable[str], tolerance: int = 300
) -> None:
    body = payload.encode() if isinstance(payload, str) else payload
    timestamp, signatures = _parse_header(header or "")
    if tolerance and abs(time.time() - timestamp) > tolerance:
        raise SignatureVerificationError("The delivery is older than the tolerance (or the clocks differ).")
    secrets = [secret] if isinstance(secret, str) else list(secret)
    for candidate in secrets:
        expected = hmac.new(candidate.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, given) for given in signatures):
            return
    raise SignatureVerificationError("No signature matches the secret.")


def construct_event(
    payload: bytes | str, header: str, secret: str | Iterable[str], tolerance: int = 300
) -> Event:
    """Verifies the delivery and returns the event it carries (`event.type`, `event.object`, …)."""
    verify_signature(payload, header, secret, tolerance)
    return Event.from_dict(json.loads(payload))
