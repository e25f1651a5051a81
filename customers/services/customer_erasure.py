"""A customer's own part of an erasure (issue #29): the Stripe customer deleted, the row's personal fields
replaced for good. The use case that also scrubs every other app's rows is `backoffice.services.customer_erase`."""

import secrets

from django.utils import timezone

from core.privacy import ERASED, Erasure
from customers.models import Customer
from stripe_gateway.gateway import gateway_for

MIN_EXACT = 3


def customer_erasure_of(*, customer: Customer) -> tuple[Erasure, str]:
    """What the customer's row says about the person, as an `Erasure`, and the tombstone id that takes the place
    of the tenant's user id (random: nothing links it back to the old one)."""
    tombstone = f"erased_{secrets.token_hex(12)}"
    # Metadata values are matched as whole strings only: a short one ("gold") is no person's name.
    values = {str(v): ERASED for v in customer.metadata.values() if len(str(v).strip()) >= MIN_EXACT}
    erasure = Erasure.of(
        texts=[customer.email, customer.name], exact={**values, customer.external_id: tombstone}
    )
    return erasure, tombstone


def customer_stripe_delete(*, customer: Customer) -> bool:
    """Deletes the customer's Stripe customer, if it has one (never inside a transaction; Stripe also cancels
    its subscriptions, which the erasure refuses to leave live). Returns whether there was one."""
    if not customer.stripe_customer_id:
        return False
    gateway_for(customer.project).customer_delete(customer.stripe_customer_id)
    return True


def customer_anonymise(*, customer: Customer, tombstone: str) -> Customer:
    """Replaces the person's fields on the (locked) row: email, name and metadata values go, the tenant's user id
    becomes the tombstone, and the row is marked erased. Stripe ids, currency and dates stay; nothing is queued
    for Stripe (the Stripe customer is deleted, not updated)."""
    customer.email = ""
    customer.name = ""
    customer.metadata = dict.fromkeys(customer.metadata, ERASED)
    customer.external_id = tombstone
    customer.stripe_sync_pending = False
    customer.erased_at = timezone.now()
    customer.save(
        update_fields=[
            "email",
            "name",
            "metadata",
            "external_id",
            "stripe_sync_pending",
            "erased_at",
            "updated_at",
        ]
    )
    return customer


def customer_erased_for_stripe(*, stripe_customer_id: str) -> bool:
    """Whether a Stripe customer belongs to an erased customer (the inbox scrubs such events before storing)."""
    return Customer.objects.filter(stripe_customer_id=stripe_customer_id, erased_at__isnull=False).exists()
