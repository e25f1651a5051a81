"""Agent keys: narrower keys for an agent on the MCP server (`/mcp`), scoped to a set of tools."""

from __future__ import annotations

from collections.abc import Sequence

from tollgate_client.pagination import Page
from tollgate_client.resources._base import Resource, compact, path
from tollgate_client.types import AgentKey


class AgentKeys(Resource):
    def create(
        self,
        *,
        name: str | None = None,
        tools: Sequence[str] | None = None,
        can_confirm: bool | None = None,
        idempotency_key: str | None = None,
    ) -> AgentKey:
        """A key (`tg_ak_…`, in the answer's `agent_key`, shown this once) that may call `tools` on the MCP server
        and nothing of the REST API; without `tools`, the read-only tools. `can_confirm`: it may confirm money
        moves (`move_confirm`)."""
        body = compact(name=name, tools=list(tools) if tools is not None else None, can_confirm=can_confirm)
        return self._post(AgentKey, "/agent_keys", body, idempotency_key=idempotency_key)

    def list(self, *, limit: int | None = None, starting_after: str | None = None) -> Page[AgentKey]:
        return self._list(AgentKey, "/agent_keys", {"limit": limit, "starting_after": starting_after})

    def revoke(
        self, key_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> AgentKey:
        """The key's next tool call is refused; revoking it again changes nothing."""
        return self._delete_returning(
            AgentKey, path("/agent_keys/{}", key_id), compact(reason=reason), idempotency_key=idempotency_key
        )
