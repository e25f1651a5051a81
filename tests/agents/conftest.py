"""Fixtures of the agents tests: agent keys made through the service, and tool calls through `tool_call`
(the MCP transport is tested on its own)."""

from collections.abc import Callable
from typing import Any

import pytest

from agents.models import AgentKey
from agents.services.keys import agent_key_create
from agents.tools import TOOLS, tool_call
from core.actors import Actor
from core.models import AuditLogEntry

ALL_TOOLS = tuple(TOOLS)


@pytest.fixture
def agent_key() -> Callable[..., AgentKey]:
    """`agent_key(project, tools=…, can_confirm=…)`: a new agent key of the project, as the API makes it."""

    def make(project: Any, tools: Any = None, can_confirm: bool = False, name: str = "agent") -> AgentKey:
        key, _ = agent_key_create(
            actor=Actor.system("tests"), project=project, name=name, tools=tools, can_confirm=can_confirm
        )
        return key

    return make


@pytest.fixture
def call(django_capture_on_commit_callbacks: Any) -> Callable[..., dict[str, Any]]:
    """`call(key, tool, **arguments)`: `tool_call`, its on-commit work run as after a real commit."""

    def run(key: AgentKey, name: str, **arguments: Any) -> dict[str, Any]:
        with django_capture_on_commit_callbacks(execute=True):
            return tool_call(key=key, name=name, arguments=arguments)

    return run


def tool_calls(key: AgentKey) -> list[tuple[str, str, str]]:
    """The key's audited tool calls, oldest first: (tool, outcome, code)."""
    rows = AuditLogEntry.objects.filter(action="agent.tool_call", target_id=key.pk).order_by(
        "created_at", "pk"
    )
    return [(row.after["tool"], row.after["outcome"], row.after.get("code", "")) for row in rows]
