"""Customers for Stripe customers that already exist (adopting a Stripe account): the tenant's customer whose
external id the operator said where to read (`billing.services.adoption`), linked to its Stripe customer, so the
mirrors route that customer's subscriptions, invoices and payments (and their events) to it. Nothing is written
to Stripe.

`customer_adopt` answers what it did (with `dry_run`, what it would do): "created", "linked" (a customer of that
external id that had no Stripe customer), "unchanged", "updated" (an adopted customer put on the test clock its
Stripe customer is on, which an adoption before test clocks were adopted left out) or "conflict" (that external
id holds another Stripe customer: left as it is, and reported).

`test_clock`: the project's row of the Stripe test clock the Stripe customer is on (`clock_adopt`), so the
customer is on it as one created through Tollgate on that clock is, and advancing it moves the customer.
"""

from typing import Any

from django.db import IntegrityError, transaction

from customers.models import Customer, TestClock
from projects.models import Project


def customer_adopt(
    *,
    project: Project,
    stripe_customer: dict[str, Any],
    external_id: str,
    test_clock: TestClock | None = None,
    dry_run: bool = False,
) -> tuple[Customer | None, str]:
    stripe_customer_id = stripe_customer["id"]
    held = Customer.objects.filter(project=project, stripe_customer_id=stripe_customer_id).first()
    if held is not None:
        if test_clock is None or held.test_clock_id == test_clock.pk:
            return held, "unchanged"
        if not dry_run:
            Customer.objects.filter(pk=held.pk).update(test_clock=test_clock)
            held.refresh_from_db(fields=["test_clock"])
        return held, "updated"
    same = Customer.objects.filter(project=project, external_id=external_id).first()
    if same is not None:
        if same.stripe_customer_id:
            return same, "conflict"
        if dry_run:
            return same, "linked"
        # Compare-and-set: a Stripe customer given to it meanwhile (a purchase) wins, and is a conflict.
        linked = Customer.objects.filter(pk=same.pk, stripe_customer_id="").update(
            stripe_customer_id=stripe_customer_id, test_clock=test_clock
        )
        same.refresh_from_db(fields=["stripe_customer_id", "test_clock"])
        return same, "linked" if linked else "conflict"
    if dry_run:
        return None, "created"
    try:
        with transaction.atomic():
            customer = Customer.objects.create(
                project=project,
                external_id=external_id,
                email=str(stripe_customer.get("email") or "")[:254],
                name=str(stripe_customer.get("name") or "")[:255],
                currency=str(stripe_customer.get("currency") or "")[:3],
                stripe_customer_id=stripe_customer_id,
                test_clock=test_clock,
            )
    except IntegrityError:  # created meanwhile under that external id: link it, or report the conflict
        return customer_adopt(
            project=project, stripe_customer=stripe_customer, external_id=external_id, test_clock=test_clock
        )
    return customer, "created"
