"""The exceptions the client raises: one class per kind of error in Tollgate's envelope, plus network errors.

Every API error carries the envelope `{"error": {"type", "code", "message", "param"}}` and the response's
`X-Request-Id`. Branch on the class (or on `code`), never on `message`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


class TollgateError(Exception):
    """Base of every error the client raises. `status` is None when no HTTP answer arrived."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.body: dict[str, Any] = dict(body or {})
        self.headers: dict[str, str] = dict(headers or {})

    def __str__(self) -> str:
        details = [
            f"{name} {value}"
            for name, value in (
                ("status", self.status),
                ("code", self.code),
                ("param", self.param),
                ("request_id", self.request_id),
            )
            if value is not None
        ]
        return f"{self.message} ({', '.join(details)})" if details else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r}, code={self.code!r})"


class APIConnectionError(TollgateError):
    """No answer from Tollgate: DNS, connection refused or reset, TLS failure. Safe to retry with the same key."""


class APITimeoutError(APIConnectionError):
    """Tollgate did not answer within `timeout`. The request may or may not have been applied: retry with the
    same idempotency key to find out without acting twice."""


class APIStatusError(TollgateError):
    """Tollgate answered with an error status. `status` is always set."""

    status: int


class InvalidRequestError(APIStatusError):
    """400 (invalid or malformed request; `param` names the field), 405, 413 (body too large), 415."""


class AuthenticationError(APIStatusError):
    """401: missing, unknown or revoked API key."""


class CardError(APIStatusError):
    """402: the card was declined; `decline_code` says why (e.g. `insufficient_funds`)."""

    @property
    def decline_code(self) -> str | None:
        value = _envelope(self.body).get("decline_code")
        return str(value) if value is not None else None


class PermissionDeniedError(APIStatusError):
    """403: a key of the wrong kind (platform vs project), or a suspended project."""


class NotFoundError(APIStatusError):
    """404: no such object — objects of other projects included."""


class ConflictError(APIStatusError):
    """409: the request conflicts with current state; `code` says which (`already_subscribed`,
    `currency_mismatch`, `reference_conflict`, `idempotency_key_reused`, …)."""


class RateLimitError(APIStatusError):
    """429: too many requests for this key. `retry_after` is the server's `Retry-After`, in seconds."""

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


class ProviderError(APIStatusError):
    """502/503: Stripe failed or is unreachable. Retry with the same idempotency key."""


class APIError(APIStatusError):
    """500 and any other unexpected status: a fault on Tollgate's side."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: CardError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: InvalidRequestError,
    409: ConflictError,
    413: InvalidRequestError,
    415: InvalidRequestError,
    429: RateLimitError,
    502: ProviderError,
    503: ProviderError,
}


def _envelope(body: Mapping[str, Any]) -> dict[str, Any]:
    error = body.get("error")
    return dict(error) if isinstance(error, Mapping) else {}


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds, from either of its forms (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def error_from_response(response: httpx.Response) -> APIStatusError:
    """The exception for an error answer. A body that is not the envelope (a proxy's HTML page) still gives
    the right class, by status, with the start of the body as the message."""
    try:
        parsed = json.loads(response.content) if response.content else {}
    except ValueError:
        parsed = {}
    body: dict[str, Any] = dict(parsed) if isinstance(parsed, Mapping) else {}
    error = _envelope(body)
    message = _optional_str(error.get("message")) or (
        response.text[:200].strip() or f"HTTP {response.status_code}"
    )
    cls = _BY_STATUS.get(response.status_code, APIError)
    return cls(
        message,
        status=response.status_code,
        type=_optional_str(error.get("type")),
        code=_optional_str(error.get("code")),
        param=_optional_str(error.get("param")),
        request_id=response.headers.get("x-request-id"),
        body=body,
        headers={key.lower(): value for key, value in response.headers.items()},
    )
