"""The request being handled, as a context variable.

Events read the request id and idempotency key from here (Stripe's ``event.request``), and webhook deliveries
caused by a request wait in its ``outbox`` until the response exists, so a receiver is never called while the
API call that caused the event is still executing. Outside any request (``advance`` hooks, direct backend
calls in tests) events carry ``request.id = null``, as Stripe's automatic events do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stripe_emulator.core.webhooks import Delivery


@dataclass
class RequestContext:
    request_id: str | None = None
    idempotency_key: str | None = None
    outbox: list[Delivery] = field(default_factory=list)


_current: ContextVar[RequestContext | None] = ContextVar("stripe_emulator_request", default=None)


def current_request() -> RequestContext | None:
    return _current.get()


@contextmanager
def request_scope(context: RequestContext) -> Iterator[RequestContext]:
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
