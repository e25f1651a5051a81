"""Middleware: the request id and logging context, the request body size limit, no NUL in the URL, and the back
office only where its cookies can be kept."""

import logging
import re
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core import context
from core.errors import InvalidRequest, body_too_large, json_error
from core.ids import random_token

logger = logging.getLogger("tollgate.request")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Where the back office is served (config/urls.py: the admin and its dashboard).
BACK_OFFICE = "/admin/"


class RequestContextMiddleware:
    """Accepts `X-Request-Id` (or makes one), echoes it back and logs one line per API request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-Id", "")
        rid = incoming if _VALID_REQUEST_ID.match(incoming) else f"req_{random_token(20)}"
        tokens = (
            context.request_id.set(rid),
            context.project_slug.set("-"),
            context.key_prefix.set("-"),
        )
        request.request_id = rid  # type: ignore[attr-defined]
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-Id"] = rid
            if request.path.startswith(("/api/", "/webhooks/")):
                logger.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "http_method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
            return response
        finally:
            context.request_id.reset(tokens[0])
            context.project_slug.reset(tokens[1])
            context.key_prefix.reset(tokens[2])


class BodySizeLimitMiddleware:
    """Answers 413 before a byte of an oversized body is read."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.API_MAX_BODY_BYTES and not request.path.startswith(BACK_OFFICE):
            return json_error(body_too_large())
        return self.get_response(request)


class NulCharactersMiddleware:
    """Answers 400 to a NUL character (`%00`) in the path or the query string, before any view looks it up:
    PostgreSQL's text cannot hold one, so the lookup would fail with a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return json_error(
                InvalidRequest("The path must not contain NUL characters (%00).", code="invalid_characters")
            )
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                return json_error(
                    InvalidRequest(
                        f"Query parameter {name.replace(chr(0), '%00')!r} must not contain NUL characters (%00).",
                        code="invalid_characters",
                        param=name.replace("\x00", "%00"),
                    )
                )
        return self.get_response(request)


class BackOfficeTransportMiddleware:
    """The back office over plain HTTP while its cookies are `Secure` (production without `INSECURE_HTTP`): a
    browser keeps no session or CSRF cookie there, so its login would end in Django's bare "CSRF verification
    failed". It answers 403 with a page that says why and what to change instead, before a password is typed.
    Behind a TLS proxy the request is secure (`SECURE_PROXY_SSL_HEADER`) and passes."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.CSRF_COOKIE_SECURE and request.path.startswith(BACK_OFFICE) and not request.is_secure():
            return render(request, "admin/https_required.html", status=403)
        return self.get_response(request)
