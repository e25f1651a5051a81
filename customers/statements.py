"""Customers' compiled reads (`core.statements`): the customers holding a Stripe customer id, with their projects,
which every Stripe event of a customer reads (`services.customers.customer_for_stripe`; building and compiling the
queryset took 5 % of a Stripe burst's worker CPU, running it 2 %). The queryset its caller used to build in
place."""

from core.statements import Statement
from customers.models import Customer

WITH_STRIPE_ID = Statement(
    lambda stripe_customer_id: Customer.objects.select_related("project").filter(
        stripe_customer_id=stripe_customer_id
    )
)
