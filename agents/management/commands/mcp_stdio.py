"""`TOLLGATE_AGENT_KEY=tg_ak_… manage.py mcp_stdio`: the MCP server over stdio, for an MCP client that starts it as
a local process (docs/integration.md, "Agents"). The session is the key's: it refuses to start without a live one;
each tool call takes the key as it then is (revoked or narrowed meanwhile: refused)."""

import os
from typing import Any

import anyio
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from agents.mcp_server import agent_key_enter, mcp_server
from agents.services.keys import agent_key_authenticate

KEY_VARIABLE = "TOLLGATE_AGENT_KEY"


class Command(BaseCommand):
    help = f"Serve the MCP server over stdin/stdout for the agent key in ${KEY_VARIABLE}."

    def handle(self, *args: Any, **options: Any) -> None:
        secret = os.environ.get(KEY_VARIABLE, "").strip()
        if not secret:
            raise CommandError(f"Set {KEY_VARIABLE} to an agent key (tg_ak_…): the tools are that key's.")
        key = agent_key_authenticate(secret=secret)
        if key is None:
            raise CommandError(
                f"{KEY_VARIABLE} is not a live agent key: unknown, revoked, or not an agent key."
            )
        server = mcp_server()
        # Tool calls run in threads of their own; this one's connection would only sit idle.
        connections.close_all()
        with agent_key_enter(key):
            anyio.run(server.run_stdio_async)
