"""What a service (a Stripe API area: customers, products, events, …) contributes to the emulator, and the
registry that merges the services an :class:`~stripe_emulator.core.emulator.Emulator` is built from.

A later phase adds a resource by writing ``stripe_emulator/<area>/{models,responses,urls}.py``, describing it
with a :class:`Service` in ``<area>/__init__.py`` and appending that to ``stripe_emulator.services.SERVICES``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stripe_emulator.core.routing import Route, Router
from stripe_emulator.core.store import StripeObject

if TYPE_CHECKING:
    from stripe_emulator.core.account import Account
    from stripe_emulator.core.context import TestClockScope
    from stripe_emulator.core.routing import Request

AdvanceHook = Callable[["Account", int, int], None]
"""``hook(account, previous_now, now)``: runs for every account after the clock moves (renewals, trial ends,
payment expiry …). Runs under the account's lock; events it emits are delivered like any others."""

ClockResolver = Callable[["Request"], "TestClockScope | None"]
"""The test clock an authenticated request acts under (its customer's), or ``None``: the request then reads
the emulator's clock. The first resolver with an answer wins."""

Includer = Callable[["Account", StripeObject], Any]
"""Builds a field that only exists when expanded (``expand[]=subscriptions`` on a customer), from the hash
that holds it. Registered as ``(object type, field)``; a field nested in hashes of an object is named by its
dotted path from the object: ``("checkout.session", "total_details.breakdown")``."""


@dataclass(frozen=True)
class Shape:
    """A fixture-shape check: ``example(account)`` makes one such object (via the backend) and returns it as
    rendered; the test asserts it has every top-level key of ``fixtures3.json``'s ``resources[fixture]``."""

    name: str
    fixture: str
    example: Callable[[Account], StripeObject]


@dataclass(frozen=True)
class Service:
    name: str
    routes: Sequence[Route] = ()
    shapes: Sequence[Shape] = ()
    advance_hooks: Sequence[AdvanceHook] = ()
    includes: Mapping[tuple[str, str], Includer] = field(default_factory=dict)
    clock_resolvers: Sequence[ClockResolver] = ()


class Registry:
    def __init__(self, services: Sequence[Service]) -> None:
        self.services = list(services)
        self.router = Router([route for service in services for route in service.routes])
        self.shapes: list[Shape] = [shape for service in services for shape in service.shapes]
        self.advance_hooks: list[AdvanceHook] = [
            hook for service in services for hook in service.advance_hooks
        ]
        self.clock_resolvers: list[ClockResolver] = [
            resolver for service in services for resolver in service.clock_resolvers
        ]
        self.includes: dict[tuple[str, str], Includer] = {}
        for service in services:
            self.includes.update(service.includes)
        names = [shape.name for shape in self.shapes]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate shape names: {names}")
