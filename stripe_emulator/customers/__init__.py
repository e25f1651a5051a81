"""Customers (``/v1/customers``)."""

from stripe_emulator.core.account import Account
from stripe_emulator.core.render import render
from stripe_emulator.core.service import Service, Shape
from stripe_emulator.core.store import StripeObject
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.customers.responses import include_customer_sources
from stripe_emulator.customers.urls import ROUTES


def _example(account: Account) -> StripeObject:
    return render(account, account.backend(CustomersBackend).customer_create(email="shape@example.com"))


def _deleted_example(account: Account) -> StripeObject:
    backend = account.backend(CustomersBackend)
    return render(account, backend.customer_delete(backend.customer_create()["id"]))


SERVICE = Service(
    name="customers",
    routes=ROUTES,
    shapes=[
        Shape("customer", "customer", _example),
        Shape("deleted_customer", "deleted_customer", _deleted_example),
    ],
    includes={("customer", "sources"): include_customer_sources},
)

__all__ = ["SERVICE", "CustomersBackend"]
