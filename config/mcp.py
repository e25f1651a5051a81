"""The MCP server's ASGI entry point: `uvicorn config.mcp:app --host … --port 8001` (docs/operations.md, "The MCP
server"). Agents' tools over Streamable HTTP at `/mcp`, each request with its agent key (agents.mcp_http);
`/live` for health checks. Production settings by default, as every entry point but manage.py."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
django.setup()

from agents.mcp_http import mcp_http_app  # noqa: E402 (the apps are loaded first)

app = mcp_http_app()
