"""The request being handled, as a context variable.

Events read the request id and idempotency key from here (Stripe's ``event.request``), and webhook deliveries
caused by a request wait in its ``outbox`` until the response exists, so a receiver is never called while the
API call that caused the event is still executing. Outside any request (``advance`` hooks, direct backend
calls in tests) events carry ``request.id = null``, as Stripe's automatic events do.

The test clock in force is a context variable too: objects of a customer on a Stripe test clock live at that
clock's ``frozen_time``, so a request about them, or a clock's advance, reads "now" from it
(:func:`test_clock_scope`), and the time-driven hooks only touch the objects of the clock in force (none:
the emulator's own clock).
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


@dataclass(frozen=True)
class TestClockScope:
    clock_id: str
    now: int


_clock: ContextVar[TestClockScope | None] = ContextVar("stripe_emulator_test_clock", default=None)


def current_test_clock() -> TestClockScope | None:
    return _clock.get()


@contextmanager
def test_clock_scope(scope: TestClockScope | None) -> Iterator[TestClockScope | None]:
    token = _clock.set(scope)
    try:
        yield scope
    finally:
        _clock.reset(token)
