"""Customers (``/v1/customers``) and their balance transactions (``…/balance_transactions``)."""

from stripe_emulator.core.account import Account
from stripe_emulator.core.render import render
from stripe_emulator.core.service import Service, Shape
from stripe_emulator.core.store import StripeObject
from stripe_emulator.customers.balance import CustomerBalanceBackend
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.customers.responses import include_customer_sources
from stripe_emulator.customers.urls import ROUTES


def _example(account: Account) -> StripeObject:
    return render(account, account.backend(CustomersBackend).customer_create(email="shape@example.com"))


def _deleted_example(account: Account) -> StripeObject:
    backend = account.backend(CustomersBackend)
    return render(account, backend.customer_delete(backend.customer_create()["id"]))


def _balance_transaction(account: Account) -> StripeObject:
    customer = account.backend(CustomersBackend).customer_create(email="shape@example.com")
    backend = account.backend(CustomerBalanceBackend)
    return render(account, backend.balance_transaction_create(customer["id"], amount=-500, currency="usd"))


SERVICE = Service(
    name="customers",
    routes=ROUTES,
    shapes=[
        Shape("customer", "customer", _example),
        Shape("deleted_customer", "deleted_customer", _deleted_example),
        Shape("customer_balance_transaction", "customer_balance_transaction", _balance_transaction),
    ],
    includes={("customer", "sources"): include_customer_sources},
)

__all__ = ["SERVICE", "CustomerBalanceBackend", "CustomersBackend"]
