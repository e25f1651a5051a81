"""Stripe test clocks (``/v1/test_helpers/test_clocks``): customers created on a clock, and their
subscriptions and invoices, live at its frozen time and move only when it is advanced."""

from stripe_emulator.core.account import Account
from stripe_emulator.core.render import render
from stripe_emulator.core.service import Service, Shape
from stripe_emulator.core.store import StripeObject
from stripe_emulator.testclocks.models import TestClocksBackend
from stripe_emulator.testclocks.responses import request_clock
from stripe_emulator.testclocks.urls import ROUTES


def _clock(account: Account) -> StripeObject:
    clock = account.backend(TestClocksBackend).clock_create(frozen_time=account.now(), name="Shape")
    return render(account, clock)


def _deleted(account: Account) -> StripeObject:
    backend = account.backend(TestClocksBackend)
    clock = backend.clock_create(frozen_time=account.now(), name="Shape")
    return render(account, backend.clock_delete(clock["id"]))


SERVICE = Service(
    name="testclocks",
    routes=ROUTES,
    shapes=[
        Shape("test_helpers.test_clock", "test_helpers.test_clock", _clock),
        Shape("deleted_test_helpers.test_clock", "deleted_test_helpers.test_clock", _deleted),
    ],
    clock_resolvers=[request_clock],
)

__all__ = ["SERVICE", "TestClocksBackend"]
