"""Test clocks, wire side, and the resolver that puts a request about a test-clock customer's objects on
that clock's time."""

from __future__ import annotations

from stripe_emulator.core.context import TestClockScope
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.core.store import Store
from stripe_emulator.testclocks.models import OBJECT, TestClocksBackend

# The params that name the object a request is about, besides the ids in its path.
_SUBJECT_PARAMS = ("customer", "test_clock", "subscription", "invoice", "payment_intent", "from_subscription")


def clock_create(req: Request) -> Response:
    p = req.params
    p.only("frozen_time", "name")
    clock = req.backend(TestClocksBackend).clock_create(
        frozen_time=p.timestamp("frozen_time", required=True) or 0,
        name=p.string("name", max_length=300),
    )
    return req.respond(clock)


def clock_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(TestClocksBackend).clock_get(req.path_params["id"]))


def clock_list(req: Request) -> Response:
    req.params.only("limit", "starting_after", "ending_before")
    clocks = req.backend(TestClocksBackend).clock_list()
    return req.respond_list(clocks, url="/v1/test_helpers/test_clocks", object_type=OBJECT)


def clock_delete(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(TestClocksBackend).clock_delete(req.path_params["id"]))


def clock_advance(req: Request) -> Response:
    p = req.params
    p.only("frozen_time")
    clock = req.backend(TestClocksBackend).clock_advance(
        req.path_params["id"], frozen_time=p.timestamp("frozen_time", required=True) or 0
    )
    return req.respond(clock)


def _clock_id_of(store: Store, object_id: str, depth: int = 0) -> str | None:
    """The test clock an object lives on: a clock itself, a customer's ``test_clock``, or (following
    ``subscription`` / ``customer`` references) its customer's."""
    obj = store.find(object_id)
    if obj is None or depth > 3:
        return None
    if obj["object"] == OBJECT:
        return object_id
    if obj["object"] == "customer":
        clock = obj.get("test_clock")
        return clock if isinstance(clock, str) else None
    for reference in ("customer", "subscription"):
        target = obj.get(reference)
        if isinstance(target, str):
            return _clock_id_of(store, target, depth + 1)
    return None


def request_clock(req: Request) -> TestClockScope | None:
    """A request about a test-clock customer's objects runs at that clock's frozen time: a customer created
    with ``test_clock``, a subscription created for such a customer, an update, an invoice payment …"""
    store = req.account.store
    data = req.params.data
    candidates = [data.get(name) for name in _SUBJECT_PARAMS] + list(req.path_params.values())
    for candidate in candidates:
        if not isinstance(candidate, str) or not candidate:
            continue
        clock_id = _clock_id_of(store, candidate)
        if clock_id is None:
            continue
        clock = store.get(OBJECT, clock_id)
        if clock is not None and not clock.get("deleted"):
            return TestClockScope(clock_id, int(clock["frozen_time"]))
    return None
