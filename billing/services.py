"""Customer writes: upsert by the tenant's external id, and the lazy Stripe customer.

Stripe is called outside every transaction, with an idempotency key derived from our customer id, so
concurrent or retried calls converge on one Stripe customer.
"""

from functools import partial
from typing import Any

from django.db import IntegrityError, transaction

from billing.gateway import gateway_for, idempotency_key
from billing.models import Customer
from core.errors import Conflict
from projects.models import Project


def customer_upsert(
    *,
    project: Project,
    external_id: str,
    email: str | None = None,
    name: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> tuple[Customer, bool]:
    """Creates the project's customer with this external id, or updates the given fields. Returns (customer, created)."""
    for _ in range(2):  # a concurrent insert of the same external id: the second pass updates it
        try:
            with transaction.atomic():
                customer = (
                    Customer.objects.select_for_update()
                    .filter(project=project, external_id=external_id)
                    .first()
                )
                created = customer is None
                if customer is None:
                    customer = Customer.objects.create(
                        project=project,
                        external_id=external_id,
                        email=email or "",
                        name=name or "",
                        metadata=metadata or {},
                    )
                    return customer, True
                changed = []
                for field, value in (("email", email), ("name", name)):
                    if value is not None and getattr(customer, field) != value:
                        setattr(customer, field, value)
                        changed.append(field)
                if metadata is not None:
                    merged = {**customer.metadata, **metadata}
                    merged = {k: v for k, v in merged.items() if v not in (None, "")}
                    if merged != customer.metadata:
                        customer.metadata = merged
                        changed.append("metadata")
                if changed:
                    customer.save(update_fields=[*changed, "updated_at"])
                    if customer.stripe_customer_id and {"email", "name"} & set(changed):
                        transaction.on_commit(partial(_queue_stripe_sync, customer.pk))
                return customer, created
        except IntegrityError:
            continue
    raise Conflict("The customer is being created concurrently; retry.", code="concurrent_update")


def _queue_stripe_sync(customer_id: str) -> None:
    from billing.tasks import customer_sync_to_stripe

    customer_sync_to_stripe.delay(customer_id)


def customer_for_purchase(*, project: Project, external_id: str) -> Customer:
    """The customer a purchase is for, created on first sight (the tenant's user id is enough to buy)."""
    customer = Customer.objects.filter(project=project, external_id=external_id).first()
    if customer is not None:
        return customer
    customer, _ = customer_upsert(project=project, external_id=external_id)
    return customer


def customer_ensure_stripe(*, customer: Customer) -> str:
    """The customer's Stripe id, creating the Stripe customer on first need (never inside a transaction)."""
    if customer.stripe_customer_id:
        return customer.stripe_customer_id
    gateway = gateway_for(customer.project)
    stripe_customer = gateway.customer_create(
        email=customer.email,
        name=customer.name,
        metadata={
            "tollgate_project": customer.project_id,
            "tollgate_customer": customer.pk,
            "external_id": customer.external_id,
        },
        idem=idempotency_key("customer", customer.pk, "create"),
    )
    # Compare-and-set: concurrent callers got the same Stripe customer (same idempotency key); one write wins.
    Customer.objects.filter(pk=customer.pk, stripe_customer_id="").update(
        stripe_customer_id=stripe_customer["id"]
    )
    customer.refresh_from_db(fields=["stripe_customer_id"])
    return customer.stripe_customer_id


def customer_sync_to_stripe(*, customer_id: str) -> None:
    customer = Customer.objects.select_related("project").filter(pk=customer_id).first()
    if customer is None or not customer.stripe_customer_id:
        return
    params: dict[str, Any] = {"email": customer.email or "", "name": customer.name or ""}
    gateway_for(customer.project).customer_update(customer.stripe_customer_id, params)
