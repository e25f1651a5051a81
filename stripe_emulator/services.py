"""The services a default :class:`~stripe_emulator.Emulator` is built from — the one list a new phase
appends its ``SERVICE`` to."""

from stripe_emulator import controls, customers, events, products
from stripe_emulator.core.service import Service

SERVICES: list[Service] = [
    controls.SERVICE,
    customers.SERVICE,
    products.SERVICE,
    events.SERVICE,
]
