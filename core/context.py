"""Per-request (and per-task) context shared with logging through contextvars: the request id, which a task
queued by a request carries on (the correlation id), the project slug, the key prefix, and the Stripe event a
worker is applying."""

from contextvars import ContextVar

request_id: ContextVar[str] = ContextVar("request_id", default="-")
project_slug: ContextVar[str] = ContextVar("project_slug", default="-")
key_prefix: ContextVar[str] = ContextVar("key_prefix", default="-")
stripe_event: ContextVar[str] = ContextVar("stripe_event", default="-")
