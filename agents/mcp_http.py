"""The MCP server over Streamable HTTP (config.mcp, served by uvicorn): the SDK's app at `/mcp`, stateless and
answering JSON, behind the agent key check, and `/live` for health checks.

Every request to `/mcp` needs `Authorization: Bearer tg_ak_…`, an agent key that is live: checked before anything
of the SDK runs, else 401 in the API's error envelope (403 for a suspended project's), nothing run and nothing
audited. Its Host (and Origin, when a browser sends one) must be one of ALLOWED_HOSTS, as on web: the SDK's own DNS
rebinding check knows only localhost. Only POST is served (405 `Allow: POST` else): stateless with JSON answers,
there is no stream to GET nor session to DELETE. Each request counts against its key's rate limit, on the counter of
its tool calls (429 with Retry-After past API_RATE_LIMIT_PER_MINUTE), tools/list and initialize too. The key check
and each tool call or listing run their database work in a thread of their own whose connections are closed when
it is done (`agents.mcp_server.in_request_thread`), before the SDK answers; one log line per request, as web's API
requests have.
"""

import logging
import re
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from agents.mcp_server import agent_key_enter, in_request_thread, mcp_server
from agents.models import AgentKey
from agents.services.keys import agent_key_authenticate
from agents.tools import rate_counted, rate_limited
from core import context
from core.errors import ApiError, AuthenticationError, Forbidden, InvalidRequest, RateLimited
from core.ids import random_token
from projects.authentication import bearer_secret

logger = logging.getLogger("tollgate.request")

MCP_PATH = "/mcp"
# Paths answered without a key: the liveness probe only.
OPEN_PATHS = frozenset({"/live"})
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _unauthenticated(message: str) -> AuthenticationError:
    return AuthenticationError(
        message, code="invalid_agent_key", headers={"WWW-Authenticate": 'Bearer realm="mcp"'}
    )


def _allowed_hosts() -> list[str]:
    # Django's own default when DEBUG is on and ALLOWED_HOSTS is empty (HttpRequest.get_host).
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        return [".localhost", "127.0.0.1", "[::1]"]
    return list(settings.ALLOWED_HOSTS)


def _host_allowed(host: str) -> bool:
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, _allowed_hosts())


def _transport_refusal(headers: Headers) -> ApiError | None:
    """Why this request's Host or Origin is refused, if it is."""
    if not _host_allowed(headers.get("host", "")):
        return InvalidRequest("Invalid Host header: not in ALLOWED_HOSTS.", code="invalid_host")
    origin = headers.get("origin")
    if origin is not None and not _host_allowed(urlsplit(origin).netloc):
        return Forbidden("Invalid Origin header: not in ALLOWED_HOSTS.", code="invalid_origin")
    return None


def _error_response(error: ApiError) -> Response:
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)


class AgentKeyMiddleware:
    """Admits a request to `/mcp` only with a live agent key, and serves it for that key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else f"req_{random_token(20)}"
        tokens = (
            context.request_id.set(request_id),
            context.project_slug.set("-"),
            context.key_prefix.set("-"),
        )
        status: list[int] = []

        async def send_logged(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())],
                }
            await send(message)

        started = time.perf_counter()
        try:
            await self._serve(scope, receive, send_logged, headers)
        finally:
            logger.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status[0] if status else 0,
                extra={
                    "http_method": scope["method"],
                    "path": scope["path"],
                    "status": status[0] if status else 0,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            for var, token in zip(
                (context.request_id, context.project_slug, context.key_prefix), tokens, strict=True
            ):
                var.reset(token)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        refusal = _transport_refusal(headers)
        if refusal is not None:
            await _error_response(refusal)(scope, receive, send)
            return
        if scope["method"] != "POST":
            # Stateless with JSON answers: no stream to GET (the SDK would hold it open for good), no session to
            # DELETE.
            await _error_response(_method_not_allowed(scope["method"]))(scope, receive, send)
            return
        header = headers.get("authorization", "")
        secret = bearer_secret(header) if header else None
        if secret is None:
            error = _unauthenticated("Send `Authorization: Bearer <agent key>` (an agent key, tg_ak_…).")
            await _error_response(error)(scope, receive, send)
            return
        # The key check and the rate count in a thread of their own, whose connections are closed before the SDK
        # runs; each tool call or listing runs in one of its own (`in_request_thread`).
        key, retry_after = await in_request_thread(lambda: _key_admitted(secret))
        if key is None:
            error = _unauthenticated("Invalid agent key: unknown or revoked.")
            await _error_response(error)(scope, receive, send)
            return
        context.key_prefix.set(key.prefix)
        context.project_slug.set(key.project.slug)
        if not key.project.is_active:
            suspended = Forbidden("This project is suspended.", code="project_suspended")
            await _error_response(suspended)(scope, receive, send)
            return
        if retry_after is not None:
            limited = RateLimited(
                f"Too many requests. Retry in {retry_after} seconds.",
                headers={"Retry-After": str(max(retry_after, 1))},
            )
            await _error_response(limited)(scope, receive, send)
            return
        with agent_key_enter(key), rate_counted():
            await self.app(scope, receive, send)


def _method_not_allowed(method: str) -> ApiError:
    return InvalidRequest(
        f'Method "{method[:20]}" not allowed.',
        code="method_not_allowed",
        status_code=405,
        headers={"Allow": "POST"},
    )


def _key_admitted(secret: str) -> tuple[AgentKey | None, int | None]:
    """The live agent key of `secret` (None: unknown or revoked) and, once counted against its rate limit when its
    project is active, the seconds to wait when past the limit (else None). Every request counts, tool call or
    not, on the same counter as tool calls."""
    key = agent_key_authenticate(secret=secret)
    if key is None or not key.project.is_active:
        return key, None
    return key, rate_limited(key)


async def live(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def mcp_http_app() -> ASGIApp:
    """The ASGI app config.mcp serves: Streamable HTTP at `/mcp` (stateless, JSON answers), `/live`."""
    server = mcp_server()
    server.custom_route("/live", methods=["GET"])(live)
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        # Host and Origin are checked against ALLOWED_HOSTS above; the SDK's check would know only localhost.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return AgentKeyMiddleware(app)
