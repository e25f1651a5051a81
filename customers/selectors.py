"""Reads of customers and of their test clocks: the one family of customer lookups (every selector takes the
project)."""

from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from core.errors import NotFound
from customers.models import Customer, TestClock
from projects.models import Project


def clock_list(*, project: Project) -> QuerySet[TestClock]:
    return TestClock.objects.filter(project=project).prefetch_related("customers")


def clock_get(*, project: Project, test_clock_id: str, param: str | None = None) -> TestClock:
    """One of the project's clocks by our id; another project's clock is a missing one (404)."""
    clock = clock_list(project=project).filter(pk=test_clock_id).first()
    if clock is None:
        raise NotFound(f"No such test clock: {test_clock_id!r}.", param=param)
    return clock


def clock_customer_ids(*, clock: TestClock) -> list[str]:
    """The external ids of the customers on the clock, oldest first (from the prefetch when there is one)."""
    return [c.external_id for c in sorted(clock.customers.all(), key=lambda c: (c.created_at, c.pk))]


def customer_list(*, project: Project, email: str | None = None) -> QuerySet[Customer]:
    """The project's customers; an erased one is gone from the API (its row stays for the money rows)."""
    customers = Customer.objects.filter(project=project, erased_at__isnull=True)
    if email:
        customers = customers.filter(email__iexact=email)
    return customers


def customer_find(*, project: Project, external_id: str) -> Customer | None:
    return Customer.objects.filter(project=project, external_id=external_id, erased_at__isnull=True).first()


def customer_lookup(*, project: Project, customer_id: str) -> Customer:
    """A customer by the tenant's external id, or else by our id."""
    customer = customer_find(project=project, external_id=customer_id)
    if customer is None:
        customer = customer_list(project=project).filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"No such customer: {customer_id!r}.")
    return customer


def customer_get(*, project: Project, external_id: str, param: str | None = None) -> Customer:
    customer = customer_find(project=project, external_id=external_id)
    if customer is None:
        raise NotFound(f"No such customer: {external_id!r}.", param=param)
    return customer


def customer_now(*, customer: Customer | None, now: datetime | None = None) -> datetime:
    """The time a customer's purchases, payments and entitlements are judged at: for a customer on a Stripe test
    clock (test mode), the clock's frozen time, where Stripe keeps its subscriptions, invoices and Checkout
    Sessions; for any other, `now` (the real time). Load the customer with `select_related("test_clock")` on a
    hot path: a clock customer's row then costs no query here."""
    real = now if now is not None else timezone.now()
    if customer is None or customer.test_clock_id is None:
        return real
    return customer.test_clock.frozen_time if customer.test_clock is not None else real
