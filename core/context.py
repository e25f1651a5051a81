"""Per-request context (request id, project slug, key prefix) shared with logging through contextvars."""

from contextvars import ContextVar

request_id: ContextVar[str] = ContextVar("request_id", default="-")
project_slug: ContextVar[str] = ContextVar("project_slug", default="-")
key_prefix: ContextVar[str] = ContextVar("key_prefix", default="-")
