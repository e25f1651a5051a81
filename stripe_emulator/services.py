"""The services a default :class:`~stripe_emulator.Emulator` is built from — the one list a new phase
appends its ``SERVICE`` to."""

from stripe_emulator import (
    accounts,
    checkout,
    controls,
    coupons,
    customers,
    events,
    meters,
    payments,
    portal,
    products,
    subscriptions,
    testclocks,
)
from stripe_emulator.core.service import Service

SERVICES: list[Service] = [
    controls.SERVICE,
    accounts.SERVICE,
    customers.SERVICE,
    products.SERVICE,
    events.SERVICE,
    payments.SERVICE,
    checkout.SERVICE,
    subscriptions.SERVICE,
    meters.SERVICE,
    portal.SERVICE,
    testclocks.SERVICE,
    coupons.SERVICE,
]
