"""Routes of agents: the project's agent keys (the MCP server itself is served apart, by `config.mcp`)."""

from agents.apis import agent_keys
from core.urls import route

urlpatterns = [
    *route("agent_keys", agent_keys.AgentKeyListCreateApi.as_view(), "agent-keys"),
    *route("agent_keys/<str:agent_key_id>", agent_keys.AgentKeyRevokeApi.as_view(), "agent-key-detail"),
]
