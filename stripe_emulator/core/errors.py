"""Stripe's error contract: one exception class per error family, each carrying the HTTP status, ``type``,
``code``, ``param`` and ``decline_code`` Stripe would send.

Backends and handlers raise these; :mod:`stripe_emulator.core.emulator` renders them as
``{"error": {...}}`` bodies. Nothing else in the emulator builds error JSON by hand.
"""

from __future__ import annotations

from typing import Any

DOC_URL = "https://stripe.com/docs/error-codes/{code}"


class StripeError(Exception):
    """Base class. ``replayable`` says whether an idempotent retry replays this error: Stripe saves a result
    only once the endpoint has begun executing, so validation failures (400/404) are not saved and may be
    retried with the same key, while card declines and server errors are."""

    status: int = 500
    type: str = "api_error"
    replayable: bool = True

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = DOC_URL.format(code=self.code)
        if self.param is not None:
            error["param"] = self.param
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        return {"error": error}


class InvalidRequestError(StripeError):
    """400 ``invalid_request_error``: missing or malformed parameters, impossible state transitions."""

    status = 400
    type = "invalid_request_error"
    replayable = False


class ParameterMissing(InvalidRequestError):
    def __init__(self, param: str) -> None:
        super().__init__(f"Missing required param: {param}.", code="parameter_missing", param=param)


class ParameterUnknown(InvalidRequestError):
    def __init__(self, param: str) -> None:
        super().__init__(f"Received unknown parameter: {param}", code="parameter_unknown", param=param)


class ParameterInvalid(InvalidRequestError):
    """A parameter with a value Stripe refuses (bad integer, enum value, length)."""

    def __init__(self, message: str, *, param: str, code: str = "parameter_invalid_string") -> None:
        super().__init__(message, code=code, param=param)


class ResourceMissing(InvalidRequestError):
    """404 ``resource_missing`` — ``No such customer: 'cus_x'``."""

    status = 404

    def __init__(self, object_type: str, object_id: str, *, param: str | None = "id") -> None:
        label = object_type.replace("_", " ")
        super().__init__(f"No such {label}: '{object_id}'", code="resource_missing", param=param)


class ResourceAlreadyExists(InvalidRequestError):
    def __init__(self, message: str, *, param: str | None = "id") -> None:
        super().__init__(message, code="resource_already_exists", param=param)


class UnrecognizedURL(InvalidRequestError):
    status = 404

    def __init__(self, method: str, path: str) -> None:
        super().__init__(
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help "
            "at https://support.stripe.com/."
        )


class AuthenticationError(StripeError):
    """401. Stripe types these ``invalid_request_error`` too; the SDK maps the status to AuthenticationError."""

    status = 401
    type = "invalid_request_error"
    replayable = False


class IdempotencyError(StripeError):
    status = 400
    type = "idempotency_error"
    replayable = False


class CardError(StripeError):
    """402 ``card_error``. Later phases raise it from payment confirmation, e.g.
    ``CardError("Your card was declined.", code="card_declined", decline_code="insufficient_funds",
    param="payment_method")``. Replayed by idempotent retries, as Stripe does for declines."""

    status = 402
    type = "card_error"
    replayable = True

    def __init__(
        self,
        message: str = "Your card was declined.",
        *,
        code: str = "card_declined",
        decline_code: str | None = "generic_decline",
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=code, decline_code=decline_code, param=param, headers=headers)


class RateLimitError(StripeError):
    status = 429
    type = "invalid_request_error"
    replayable = False


class APIError(StripeError):
    """500 ``api_error``: a bug in the emulator surfaces as this, never as a dropped connection."""

    status = 500
    type = "api_error"
    replayable = True
