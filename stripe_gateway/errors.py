"""Stripe's errors as the domain errors the API reports: card errors → 402 with the decline code, Stripe unreachable
or failing → 502/503 `payment_provider_error`; which failures leave a write's outcome unknown, and Stripe's reason
for refusing one."""

import logging

import stripe
from prometheus_client import Counter

from core.errors import ApiError, CardError, InvalidRequest, ProviderError

logger = logging.getLogger(__name__)

# Counted in process (django-prometheus' registry; set PROMETHEUS_MULTIPROC_DIR to sum gunicorn's workers).
STRIPE_ERRORS = Counter(
    "tollgate_stripe_api_errors", "Stripe API calls that failed, by the SDK's error class.", ["error"]
)


class StripeObjectMissing(ApiError):
    """Stripe answered 404 for an object we named (deleted there, or another account's)."""

    status_code = 502
    type = "payment_provider_error"
    default_code = "provider_object_missing"
    default_message = "The payment provider no longer knows this object."


def outcome_unknown(exc: ApiError) -> bool:
    """Whether Stripe may have acted on a write that failed with `exc`: its answer was lost on the way (no
    connection, a timeout, past the SDK's retries) or Stripe failed while executing it (5xx; Stripe keeps the
    result of a request that began executing under its idempotency key). A refusal (a card declined, an
    invalid request, authentication, a rate limit or a concurrent request on the same key) did nothing."""
    cause = exc.__cause__
    if isinstance(cause, stripe.APIConnectionError | stripe.APIError):
        return True
    return isinstance(cause, stripe.StripeError) and (cause.http_status or 0) >= 500


def retried_by_sdk(error: stripe.StripeError) -> bool:
    """Whether the SDK retries a request that failed with `error`, as `stripe.HTTPClient._should_retry` decides:
    a connection error it marks retryable; an answer Stripe marks `Stripe-Should-Retry` as it says, else a 409
    or a 5xx."""
    if isinstance(error, stripe.APIConnectionError):
        return bool(error.should_retry)
    headers = {str(name).lower(): str(value) for name, value in (error.headers or {}).items()}
    advice = headers.get("stripe-should-retry", "")
    if advice in ("true", "false"):
        return advice == "true"
    status = int(error.http_status or 0)
    return status == 409 or status >= 500


def refusal_code(exc: ApiError) -> str:
    """Stripe's own error code of a request it refused (`amount_too_large`, `charge_already_refunded` …), "" for
    anything else."""
    cause = exc.__cause__
    if isinstance(cause, stripe.InvalidRequestError):
        return str(cause.code or "")
    return ""


def translate_error(exc: stripe.StripeError) -> ApiError:
    """Maps a Stripe SDK error to the domain error the API reports."""
    if isinstance(exc, stripe.CardError):
        error = exc.error
        decline_code = getattr(error, "decline_code", None) if error else None
        return CardError(
            exc.user_message or "The card was declined.",
            code=exc.code or "card_declined",
            decline_code=decline_code or exc.code or "generic_decline",
        )
    if isinstance(exc, stripe.RateLimitError):
        return ProviderError(
            "The payment provider is rate limiting; retry shortly.",
            code="provider_rate_limited",
            status_code=503,
        )
    if isinstance(exc, stripe.APIConnectionError):
        return ProviderError(
            "The payment provider is unreachable; retry shortly.",
            code="provider_unavailable",
            status_code=503,
        )
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return ProviderError(
            "The payment provider rejected our credentials.", code="provider_authentication_failed"
        )
    if isinstance(exc, stripe.InvalidRequestError):
        if exc.code == "resource_missing":
            return StripeObjectMissing(str(exc.user_message or exc))
        if exc.code == "customer_tax_location_invalid":
            return InvalidRequest(
                "Stripe has no address for this customer to compute tax from; a checkout with "
                "automatic_tax collects it.",
                code="customer_tax_location_invalid",
                param="automatic_tax",
            )
        return ProviderError(
            f"The payment provider refused the request: {exc.user_message or exc}",
            code="provider_invalid_request",
        )
    return ProviderError("The payment provider failed; retry shortly.", code="provider_error")


def failed(exc: stripe.StripeError) -> ApiError:
    """A failed Stripe call, logged and counted, as the domain error the API reports."""
    logger.warning("Stripe call failed: %s (%s)", exc.__class__.__name__, getattr(exc, "code", None))
    STRIPE_ERRORS.labels(error=exc.__class__.__name__).inc()
    return translate_error(exc)
