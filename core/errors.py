"""Domain errors and the one exception handler that renders every API error in the envelope of API.md.

`{"error": {"type", "code", "message", "param"}}` — JSON only, never an HTML page or a stack trace.
"""

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the API reports to its caller. Subclasses fix the type and status."""

    status_code = 500
    type = "api_error"
    default_code = "internal_error"
    default_message = "An unexpected error occurred."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        param: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.message = message or self.default_message
        self.code = code or self.default_code
        self.param = param
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers or {}
        self.extra = extra
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
        }
        error.update(self.extra)
        return {"error": error}


class InvalidRequest(ApiError):
    status_code = 400
    type = "invalid_request_error"
    default_code = "invalid_request"
    default_message = "The request is invalid."


class AuthenticationError(ApiError):
    status_code = 401
    type = "authentication_error"
    default_code = "invalid_api_key"
    default_message = "Invalid API key."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="api"'})
        super().__init__(message, **kwargs)


class CardError(ApiError):
    status_code = 402
    type = "card_error"
    default_code = "card_declined"
    default_message = "The card was declined."


class Forbidden(ApiError):
    status_code = 403
    type = "permission_error"
    default_code = "forbidden"
    default_message = "This key may not perform this request."


class NotFound(ApiError):
    status_code = 404
    type = "not_found"
    default_code = "resource_missing"
    default_message = "No such object."


class Conflict(ApiError):
    status_code = 409
    type = "conflict"
    default_code = "conflict"
    default_message = "The request conflicts with the current state."


class RateLimited(ApiError):
    status_code = 429
    type = "rate_limit_error"
    default_code = "rate_limited"
    default_message = "Too many requests."


class ProviderError(ApiError):
    status_code = 502
    type = "payment_provider_error"
    default_code = "provider_error"
    default_message = "The payment provider failed."


def _first_validation_error(detail: Any, path: str = "") -> tuple[str | None, str, str]:
    """Walks DRF's nested error detail to the first leaf: (param path, message, code)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            child = str(key) if not path else f"{path}[{key}]" if str(key).isdigit() else f"{path}.{key}"
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                child = path
            return _first_validation_error(value, child)
    if isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                return _first_validation_error(value, f"{path}[{index}]")
            return _first_validation_error(value, path)
    code = getattr(detail, "code", None) or "invalid"
    return (path or None), str(detail), str(code)


_DRF_CODES = {
    "required": "parameter_missing",
    "null": "parameter_missing",
    "blank": "parameter_missing",
    "empty": "parameter_missing",  # a list that must not be empty (`allow_empty=False`), sent empty
    "unknown_parameter": "unknown_parameter",
}


def translate(exc: BaseException) -> ApiError:
    """Maps any exception to the ApiError the caller sees."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, drf.ValidationError):
        param, message, code = _first_validation_error(exc.detail)
        text = f"{param}: {message}" if param else message
        return InvalidRequest(text, code=_DRF_CODES.get(code, "invalid_parameter"), param=param)
    if isinstance(exc, drf.ParseError):
        return InvalidRequest(f"Malformed request body: {exc.detail}", code="malformed_body")
    if isinstance(exc, drf.UnsupportedMediaType):
        return InvalidRequest(
            "Request bodies must be JSON (Content-Type: application/json).",
            code="unsupported_media_type",
            status_code=415,
        )
    if isinstance(exc, drf.NotAuthenticated):
        return AuthenticationError(
            "No API key provided. Send `Authorization: Bearer <key>`.", code="missing_api_key"
        )
    if isinstance(exc, drf.AuthenticationFailed):
        return AuthenticationError(str(exc.detail))
    if isinstance(exc, drf.PermissionDenied):
        detail_code = getattr(exc.detail, "code", None)
        code = str(detail_code) if detail_code and detail_code != "permission_denied" else "forbidden"
        return Forbidden(str(exc.detail), code=code)
    if isinstance(exc, DjangoPermissionDenied):
        return Forbidden()
    if isinstance(exc, drf.NotFound | Http404):
        return NotFound()
    if isinstance(exc, drf.MethodNotAllowed):
        return InvalidRequest(str(exc.detail), code="method_not_allowed", status_code=405)
    if isinstance(exc, drf.NotAcceptable):
        return InvalidRequest(str(exc.detail), code="not_acceptable", status_code=406)
    if isinstance(exc, drf.Throttled):
        wait = int(getattr(exc, "wait", None) or 1)
        return RateLimited(
            f"Too many requests. Retry in {wait} seconds.", headers={"Retry-After": str(max(wait, 1))}
        )
    if isinstance(exc, RequestDataTooBig):
        return body_too_large()
    return ApiError()


def body_too_large() -> ApiError:
    from django.conf import settings

    return InvalidRequest(
        f"The request body is larger than {settings.API_MAX_BODY_BYTES} bytes.",
        code="request_too_large",
        status_code=413,
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    error = translate(exc)
    if type(error) is ApiError and not isinstance(exc, ApiError):
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
    response = Response(error.body(), status=error.status_code, headers=error.headers)
    response.exception = True
    return response


def json_error(error: ApiError) -> JsonResponse:
    response = JsonResponse(error.body(), status=error.status_code)
    for name, value in error.headers.items():
        response[name] = value
    return response


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error(NotFound("No such route." if exception is not None else None, code="route_not_found"))


def method_not_allowed(request: HttpRequest, allowed: list[str]) -> JsonResponse:
    """405 in the envelope, with the `Allow` header HTTP requires (DRF's wording, as on every API route)."""
    return json_error(
        InvalidRequest(
            f'Method "{request.method}" not allowed.',
            code="method_not_allowed",
            status_code=405,
            headers={"Allow": ", ".join(allowed)},
        )
    )


_View = TypeVar("_View", bound=Callable[..., HttpResponse])


def plain_view(*methods: str) -> Callable[[_View], _View]:
    """For the plain Django views outside DRF that machines call (probes, `/metrics`, Stripe's intake): only
    `methods` (GET brings HEAD), any other method answers 405 in the envelope, and no CSRF check. None of them
    reads a cookie or a session (they take no credentials, a bearer token or a signature), so a CSRF check
    protects nothing there and would answer Django's HTML 403 page to every POST, PUT, PATCH and DELETE."""
    allowed = [*methods, "HEAD"] if "GET" in methods and "HEAD" not in methods else list(methods)

    def decorate(view: _View) -> _View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                return method_not_allowed(request, allowed)
            return view(request, *args, **kwargs)

        exempt: _View = csrf_exempt(wrapper)  # type: ignore[assignment]
        return exempt

    return decorate


@csrf_exempt  # an unknown route answers 404 on every method; the CSRF check would answer an HTML 403 first
def api_route_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    return json_error(NotFound(f"No such route: {request.method} {request.path}.", code="route_not_found"))


def handler500(request: HttpRequest) -> JsonResponse:
    return json_error(ApiError())


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error(InvalidRequest())


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error(Forbidden())
