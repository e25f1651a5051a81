"""The MCP server as agents reach it, for the MCP tests: config.mcp's app served by a real uvicorn in a thread of
the test process (it reads the test database, committed rows only: the tests use `transaction=True`), and
`manage.py mcp_stdio` as a subprocess; both talked to with the SDK's own client (`mcp.client`)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx2
import uvicorn
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from tests.webhooks.workers import free_port

ROOT = Path(__file__).resolve().parents[2]
_T = TypeVar("_T")
Steps = Callable[[ClientSession], Awaitable[_T]]


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """`app` served by uvicorn on a free loopback port, in a thread, until the block ends; its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", access_log=False)
    )
    thread = threading.Thread(target=server.run, name=f"mcp-uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@asynccontextmanager
async def http_session(url: str, secret: str) -> AsyncIterator[ClientSession]:
    """An initialized MCP session with the server at `url` (its `/mcp`), as the agent key `secret`."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"}, timeout=60) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def over_http(url: str, secret: str, steps: Steps[_T]) -> _T:
    """`steps(session)` in an MCP session with the server at `url`, as the agent key `secret`."""

    async def run() -> _T:
        async with http_session(url, secret) as session:
            return await steps(session)

    return anyio.run(run)


def over_stdio(env: dict[str, str], steps: Steps[_T]) -> _T:
    """`steps(session)` in an MCP session with `manage.py mcp_stdio`, started as a subprocess with `env`."""
    parameters = StdioServerParameters(
        command=sys.executable, args=["manage.py", "mcp_stdio"], env=env, cwd=str(ROOT)
    )

    async def run() -> _T:
        with open(os.devnull, "w") as errlog:
            async with (
                stdio_client(parameters, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                return await steps(session)

    return anyio.run(run)


def answer(result: CallToolResult) -> dict[str, Any]:
    """A tool's answer: its structured content, which its text content says too (for clients that read text)."""
    assert len(result.content) == 1
    text = json.loads(result.content[0].text)  # type: ignore[union-attr]
    assert text == result.structured_content
    return dict(text)


def ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.structured_content
    return answer(result)


def refused(result: CallToolResult) -> dict[str, Any]:
    """The error of a tool error result: {"code", "message", "status", …}."""
    assert result.is_error, result.structured_content
    return dict(answer(result)["error"])
