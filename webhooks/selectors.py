"""Reads of the stored Stripe events for one project (operators' commands)."""

from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Concat

from billing.handlers.lookups import stripe_customers_of
from customers.models import Customer
from projects.models import Project
from stripe_gateway.gateway import stripe_account_of
from webhooks.models import StripeEvent


def stripe_events_of_project(*, project: Project, events: QuerySet[StripeEvent]) -> QuerySet[StripeEvent]:
    """The events of `events` that belong to `project`: those its own Stripe account sent (`project`), and on the
    platform's account (where `project` is empty) those routed to it (`tenant`: their object names it in
    metadata) or about one of its Stripe customers — most of an invoice's or a renewal payment's events name no
    project, only the customer: keyed by it (`ordering_key`), or, not handed over to it yet, by the invoice or
    payment intent that the customer's mirror knows."""
    account = stripe_account_of(project)
    customer_keys = (
        Customer.objects.filter(project=project)
        .exclude(stripe_customer_id="")
        .annotate(key=Concat(Value(f"{account}:"), "stripe_customer_id"))
        .values("key")
    )
    mine = Q(project=project) | Q(tenant=project.pk) | Q(account=account, ordering_key__in=customer_keys)
    customers = set(
        Customer.objects.filter(project=project)
        .exclude(stripe_customer_id="")
        .values_list("stripe_customer_id", flat=True)
    )
    # Keyed by an invoice or a payment intent whose body names no customer: resolved through the mirror's rows.
    unresolved = (
        events.filter(account=account, tenant="")
        .exclude(ordering_key__startswith=f"{account}:cus_")
        .values_list("ordering_key", flat=True)
        .distinct()
    )
    keys = {key.partition(":")[2]: key for key in unresolved.order_by()}
    found = stripe_customers_of(account=account, stripe_object_ids=keys)
    through = [keys[object_id] for object_id, customer in found.items() if customer in customers]
    if through:
        mine |= Q(account=account, ordering_key__in=through)
    return events.filter(mine)
