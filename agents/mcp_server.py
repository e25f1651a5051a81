"""The MCP server agents talk to: the SDK's `MCPServer` with one MCP tool per entry of `agents.tools.TOOLS` (its
name, description and input schema), each call made by `tool_call` for the agent key of the request.

The transport decides whose key that is (`agent_key_enter`): config.mcp's HTTP app for each request, from its
`Authorization: Bearer tg_ak_…` header (agents.mcp_http), `manage.py mcp_stdio` once, from TOLLGATE_AGENT_KEY.
A key lists only the tools it may call. Tool calls touch the database, so they run off the event loop, in a thread of
their own request (asgiref's thread-sensitive mode, as Django runs sync code under ASGI), whose database
connections are closed when the request ends. A refusal or a failure is an MCP tool error result (isError)
carrying the REST API's error object (type, code, message) and its HTTP status as JSON; nothing of an unexpected
exception reaches the agent.
"""

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.db import connections
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.context import Context
from mcp_types import CallToolResult, ContentBlock, TextContent, ToolAnnotations
from mcp_types import Tool as MCPTool

from agents.models import AgentKey
from agents.tools import CONFIRM, READ, TOOLS, ToolError, tool_call
from core.errors import (
    ApiError,
    AuthenticationError,
    CardError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    ProviderError,
    RateLimited,
)

logger = logging.getLogger(__name__)

SERVER_NAME = "tollgate"
INSTRUCTIONS = (
    "Tollgate's billing tools for one project: look up its customers (by your own user ids), their "
    "subscriptions, invoices, usage and entitlements; create checkout and portal links; grant or revoke "
    "features. Money moves are two steps: a `*_request` tool only previews the move and answers a "
    "`confirmation_id`; nothing moves until a person, or a key allowed to, confirms it with `move_confirm`. "
    "A refused call answers an error with a stable `code` and a `message`."
)
# The REST API's error `type` of each status (docs/integration.md, "Errors").
_ERROR_TYPES = {
    **{
        error.status_code: error.type
        for error in (
            InvalidRequest,
            AuthenticationError,
            CardError,
            Forbidden,
            NotFound,
            Conflict,
            RateLimited,
        )
    },
    502: ProviderError.type,
    503: ProviderError.type,
}
# What an agent sees of an exception nobody anticipated (the exception itself goes to the log).
INTERNAL_ERROR = {
    "type": ApiError.type,
    "code": "internal_error",
    "message": "The tool failed unexpectedly; nothing more is known.",
    "status": 500,
}
NO_KEY = {
    "type": AuthenticationError.type,
    "code": "invalid_agent_key",
    "message": "No agent key.",
    "status": 401,
}

# The agent key of the request (or of the stdio session) being served.
_agent_key: ContextVar[AgentKey | None] = ContextVar("agent_key", default=None)

_T = TypeVar("_T")


@contextmanager
def agent_key_enter(key: AgentKey) -> Iterator[None]:
    """Serves what runs inside (and the tasks it starts) for `key`."""
    token = _agent_key.set(key)
    try:
        yield
    finally:
        _agent_key.reset(token)


async def in_request_thread(function: Callable[[], _T]) -> _T:
    """Runs `function` (database work) off the event loop, in the current request's thread: its own thread when the
    request has none yet, whose database connections are closed once it is done (a per-request thread would
    otherwise leave its connection open until the thread is collected)."""
    async with ThreadSensitiveContext():
        try:
            return await sync_to_async(function, thread_sensitive=True)()
        finally:
            await sync_to_async(connections.close_all, thread_sensitive=True)()


def _text(body: dict[str, Any]) -> list[ContentBlock]:
    return [TextContent(type="text", text=json.dumps(body, ensure_ascii=False, sort_keys=True))]


def tool_result(body: dict[str, Any]) -> CallToolResult:
    """A tool's answer: its JSON as text for any client, and as structured content for those that read it."""
    return CallToolResult(content=_text(body), structured_content=body)


def tool_error_result(error: dict[str, Any]) -> CallToolResult:
    """A refusal or a failure, `{"error": {"type", "code", "message", "status", …}}` (the REST API's error object
    and its HTTP status), as the MCP tool error result (isError)."""
    body = {"error": error}
    return CallToolResult(content=_text(body), structured_content=body, is_error=True)


def _listed(name: str) -> MCPTool:
    tool = TOOLS[name]
    return MCPTool(
        name=tool.name,
        description=tool.description,
        input_schema=tool.parameters,
        # Hints for clients that ask a person before a call: reads change nothing, and of the rest only
        # `move_confirm` moves money (a `*_request` tool only asks for a move).
        annotations=ToolAnnotations(
            read_only_hint=tool.kind == READ,
            destructive_hint=tool.kind == CONFIRM,
            open_world_hint=False,
        ),
    )


def _key_tools(key: AgentKey) -> list[str]:
    """The tools `key` may call as it is now in the database (none once revoked; `move_confirm` only with
    `can_confirm`), in the registry's order."""
    current = AgentKey.objects.filter(pk=key.pk).only("tools", "revoked_at", "can_confirm").first()
    if current is None or current.is_revoked:
        return []
    return [
        name
        for name, tool in TOOLS.items()
        if name in current.tools and (tool.kind != CONFIRM or current.can_confirm)
    ]


def _call(key: AgentKey, name: str, arguments: dict[str, Any]) -> CallToolResult:
    try:
        return tool_result(tool_call(key=key, name=name, arguments=arguments))
    except ToolError as error:
        # The REST API's error object for the same refusal: its type, and its HTTP status (404 `not_found`: not
        # this project's, or none).
        kind = _ERROR_TYPES.get(error.status, ApiError.type)
        return tool_error_result({"type": kind, **error.body(), "status": error.status})
    except Exception:
        logger.exception("Agent tool %s failed (key %s)", name[:100], key.prefix)
        return tool_error_result(dict(INTERNAL_ERROR))


class TollgateMCPServer(MCPServer[Any]):
    """`MCPServer` whose tools are the registry's, listed and called for the agent key being served."""

    async def list_tools(self) -> list[MCPTool]:
        key = _agent_key.get()
        if key is None:
            return []
        return [_listed(name) for name in await in_request_thread(lambda: _key_tools(key))]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult:
        key = _agent_key.get()
        if key is None:  # no transport serves a request without a key; refused all the same
            return tool_error_result(dict(NO_KEY))
        return await in_request_thread(lambda: _call(key, name, arguments))


def mcp_server() -> TollgateMCPServer:
    """The MCP server of the tool registry (one per process; each request or session is served for its key)."""
    return TollgateMCPServer(
        SERVER_NAME,
        title="Tollgate",
        instructions=INSTRUCTIONS,
        version=str(settings.SPECTACULAR_SETTINGS.get("VERSION", "")),
    )
