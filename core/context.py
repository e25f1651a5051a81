"""Per-request (and per-task) context shared with logging through contextvars: the request id, which a task
queued by a request carries on (the correlation id), the project slug, the key prefix, the Stripe event a
worker is applying, and whom that event concerns (noted by the code that finds them, for the event's log line)."""

from contextvars import ContextVar
from typing import Any

request_id: ContextVar[str] = ContextVar("request_id", default="-")
project_slug: ContextVar[str] = ContextVar("project_slug", default="-")
key_prefix: ContextVar[str] = ContextVar("key_prefix", default="-")
stripe_event: ContextVar[str] = ContextVar("stripe_event", default="-")
# While a worker applies a Stripe event: a dict the routing code fills (`subjects_note`) with the project slug, the
# tenant's customer id, the payment and its reference, so the event's log line names them without reading again.
stripe_event_subjects: ContextVar[dict[str, str] | None] = ContextVar("stripe_event_subjects", default=None)


def subjects_note(**found: Any) -> None:
    """Notes whom the Stripe event being applied concerns; the first value noted for a field stays. Outside the
    application of an event, does nothing."""
    subjects = stripe_event_subjects.get()
    if subjects is None:
        return
    for field, value in found.items():
        if value and field not in subjects:
            subjects[field] = str(value)
