"""Test clocks (``/v1/test_helpers/test_clocks``): a frozen time that a test moves forward, and the customers
created on it, whose subscriptions and invoices live at that time instead of the emulator's clock.

An advance runs the emulator's own advance hooks (renewals, trial ends, dunning, Checkout expiry) under the
clock's scope (:func:`~stripe_emulator.core.context.test_clock_scope`): "now" is the target time and only the
clock's customers' objects move, so a clock renews exactly as ``POST /_emulator/advance`` does. Stripe
advances asynchronously: the answer says ``advancing``; the emulator finishes before answering, so the next
retrieve says ``ready`` (or ``internal_failure``), with ``test_helpers.test_clock.advancing`` and ``.ready``
around the events the advance caused.
"""

from __future__ import annotations

import logging

from stripe_emulator.core import ids
from stripe_emulator.core.account import Account, BaseBackend
from stripe_emulator.core.context import TestClockScope, test_clock_scope
from stripe_emulator.core.errors import InvalidRequestError, ResourceMissing
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.subscriptions.models import SubscriptionsBackend
from stripe_emulator.subscriptions.models.base import ENDED_STATUSES
from stripe_emulator.subscriptions.periods import add_interval

logger = logging.getLogger(__name__)

OBJECT = "test_helpers.test_clock"
# Stripe deletes a test clock, and everything on it, 30 days after it was created.
LIFETIME = 30 * 86_400


def customer_clock_scope(account: Account, customer_id: str | None) -> TestClockScope | None:
    """The scope a change to this customer's objects runs in: its test clock's frozen time (None: the
    emulator's clock). For the hosted pages (portal, Checkout), which have no API request to resolve."""
    clock_id = account.test_clock_of(customer_id)
    clock = account.store.get(OBJECT, clock_id) if clock_id else None
    if clock is None or clock.get("deleted"):
        return None
    return TestClockScope(str(clock["id"]), int(clock["frozen_time"]))


class TestClocksBackend(BaseBackend):
    __test__ = False  # not a pytest test class, whatever its name

    def _lifecycle(self, event_type: str, clock: StripeObject) -> None:
        """An event about the clock itself (created, advancing, ready, internal_failure, deleted): the clock is
        an object of the account, made and advanced in real time (its `created` is the wall's), so its own
        events are too — only what belongs to the clock (its customers' objects) lives at its frozen time."""
        with test_clock_scope(None):
            self.emit(event_type, clock)

    def clock_create(self, *, frozen_time: int, name: str | None) -> StripeObject:
        created = self.account.emulator.clock.now()
        clock: StripeObject = {
            "id": ids.id_for(OBJECT),
            "object": OBJECT,
            "created": created,
            "deletes_after": created + LIFETIME,
            "frozen_time": frozen_time,
            "livemode": False,
            "name": name,
            "status": "ready",
            "status_details": {},
        }
        self.store.insert(clock)
        self._lifecycle("test_helpers.test_clock.created", clock)
        return clock

    def clock_require(self, clock_id: str, *, param: str | None = "id") -> StripeObject:
        clock = self.store.get(OBJECT, clock_id)
        if clock is None or clock.get("deleted"):
            raise ResourceMissing("test_clock", clock_id, param=param)
        return clock

    def clock_get(self, clock_id: str) -> StripeObject:
        """A live clock or its deletion tombstone (what a retrieve returns)."""
        clock = self.store.get(OBJECT, clock_id)
        if clock is None:
            raise ResourceMissing("test_clock", clock_id)
        return clock

    def clock_list(self) -> list[StripeObject]:
        return self.store.newest_first(OBJECT)

    def customers_on(self, clock_id: str) -> list[StripeObject]:
        return [c for c in self.store.newest_first("customer") if c.get("test_clock") == clock_id]

    def subscriptions_on(self, clock_id: str) -> list[StripeObject]:
        customers = {c["id"] for c in self.customers_on(clock_id)}
        return [
            s
            for s in self.store.newest_first("subscription")
            if s["customer"] in customers and s["status"] not in ENDED_STATUSES
        ]

    def advance_limit(self, clock: StripeObject) -> int:
        """Stripe's bound: two intervals of the clock's shortest subscription, or two years without any."""
        frozen = int(clock["frozen_time"])
        recurring = [
            item["price"]["recurring"]
            for sub in self.subscriptions_on(clock["id"])
            for item in sub["items"]["data"]
        ]
        limits = [add_interval(frozen, r["interval"], r["interval_count"], 2) for r in recurring]
        return min(limits) if limits else add_interval(frozen, "year", 1, 2)

    def clock_advance(self, clock_id: str, *, frozen_time: int) -> StripeObject:
        """Move the clock to ``frozen_time`` and run everything due on its customers by then. Returns the
        clock as Stripe answers an advance: still ``advancing``."""
        clock = self.clock_require(clock_id)
        if clock["status"] != "ready":
            raise InvalidRequestError(
                f"The test clock {clock_id} can only be advanced while its status is `ready`; it is "
                f"`{clock['status']}`.",
                param=None,
            )
        previous = int(clock["frozen_time"])
        if frozen_time <= previous:
            raise InvalidRequestError(
                "The test clock's frozen_time can only move forward: it must be after the current "
                f"frozen_time ({previous}).",
                param="frozen_time",
            )
        limit = self.advance_limit(clock)
        if frozen_time > limit:
            raise InvalidRequestError(
                "Cannot advance the test clock more than two intervals of its shortest subscription (two "
                f"years without subscriptions) past its current frozen_time: at most {limit}.",
                param="frozen_time",
            )
        clock["status"] = "advancing"
        clock["status_details"] = {"advancing": {"target_frozen_time": frozen_time}}
        self._lifecycle("test_helpers.test_clock.advancing", clock)
        answer = clone(clock)
        with test_clock_scope(TestClockScope(clock_id, frozen_time)):
            try:
                self.account.emulator.run_advance_hooks(self.account, previous, frozen_time)
            except Exception:
                logger.exception("test clock %s failed to advance", clock_id)
                clock["status"] = "internal_failure"
                clock["status_details"] = {}
                self._lifecycle("test_helpers.test_clock.internal_failure", clock)
                return answer
            clock["frozen_time"] = frozen_time
            clock["status"] = "ready"
            clock["status_details"] = {}
            self._lifecycle("test_helpers.test_clock.ready", clock)
        return answer

    def clock_delete(self, clock_id: str) -> StripeObject:
        """Deletes the clock and, as Stripe does, every customer on it (their subscriptions end first)."""
        clock = self.clock_require(clock_id)
        subscriptions = self.account.backend(SubscriptionsBackend)
        customers = self.account.backend(CustomersBackend)
        with test_clock_scope(TestClockScope(clock_id, int(clock["frozen_time"]))):
            for sub in self.subscriptions_on(clock_id):
                subscriptions.subscription_cancel(sub["id"])
            for customer in self.customers_on(clock_id):
                customers.customer_delete(customer["id"])
        self._lifecycle("test_helpers.test_clock.deleted", clock)
        tombstone: StripeObject = {"id": clock_id, "object": OBJECT, "deleted": True}
        self.store.replace(tombstone)
        return tombstone
