"""Billing meters (``/v1/billing/meters``), meter events (``/v1/billing/meter_events``), their cancellation
(``/v1/billing/meter_event_adjustments``) and event summaries (``/v1/billing/meters/{id}/event_summaries``)."""

from stripe_emulator.core.account import Account
from stripe_emulator.core.render import render
from stripe_emulator.core.service import Service, Shape
from stripe_emulator.core.store import StripeObject
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.meters.models import MetersBackend, render_meter_event
from stripe_emulator.meters.urls import ROUTES


def _meter(account: Account) -> StripeObject:
    meter = account.backend(MetersBackend).meter_create(
        display_name="Shape", event_name="shape", formula="sum"
    )
    return render(account, meter)


def _event(account: Account) -> StripeObject:
    backend = account.backend(MetersBackend)
    backend.meter_create(display_name="Shape", event_name="shape", formula="sum")
    customer = account.backend(CustomersBackend).customer_create()
    event = backend.meter_event_create(
        event_name="shape", payload={"stripe_customer_id": customer["id"], "value": "3"}
    )
    return render_meter_event(event)


def _adjustment(account: Account) -> StripeObject:
    backend = account.backend(MetersBackend)
    backend.meter_create(display_name="Shape", event_name="shape", formula="sum")
    customer = account.backend(CustomersBackend).customer_create()
    backend.meter_event_create(
        event_name="shape", payload={"stripe_customer_id": customer["id"], "value": "3"}, identifier="shape-1"
    )
    return backend.meter_event_adjustment_create(event_name="shape", type="cancel", identifier="shape-1")


def _summary(account: Account) -> StripeObject:
    backend = account.backend(MetersBackend)
    meter = backend.meter_create(display_name="Shape", event_name="shape", formula="sum")
    customer = account.backend(CustomersBackend).customer_create()
    now = account.now()
    return backend.meter_event_summaries(
        meter["id"], customer=customer["id"], start_time=now - 60, end_time=now + 60
    )[0]


SERVICE = Service(
    name="meters",
    routes=ROUTES,
    shapes=[
        Shape("billing.meter", "billing.meter", _meter),
        Shape("billing.meter_event", "billing.meter_event", _event),
        Shape("billing.meter_event_adjustment", "billing.meter_event_adjustment", _adjustment),
        Shape("billing.meter_event_summary", "billing.meter_event_summary", _summary),
    ],
)

__all__ = ["SERVICE", "MetersBackend"]
