"""Customer writes: upsert by the tenant's external id (and an operator's audited change through it), and the
lazy Stripe customer.

Stripe is called outside every transaction, with an idempotency key derived from our customer id, so
concurrent or retried calls converge on one Stripe customer.
"""

import logging
from collections.abc import Iterable
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_record
from core.context import subjects_note
from core.errors import Conflict
from customers import statements
from customers.models import Customer, TestClock
from customers.services.test_clocks import clock_for_customer
from projects.models import Project
from stripe_gateway.gateway import gateway_for, idempotency_key, stripe_account_of

logger = logging.getLogger(__name__)


def customer_upsert(
    *,
    project: Project,
    external_id: str,
    email: str | None = None,
    name: str | None = None,
    metadata: dict[str, Any] | None = None,
    test_clock: str | None = None,
) -> tuple[Customer, bool]:
    """Creates the project's customer with this external id, or updates the given fields. Returns (customer, created).

    `test_clock` (a test clock of the project; test mode only, else 403): the customer's Stripe customer is
    created on that clock, at once. A customer already at Stripe cannot move onto a clock, as at Stripe:
    409 `test_clock_immutable`, nothing changed."""
    clock = clock_for_customer(project=project, test_clock_id=test_clock) if test_clock else None
    customer, created = _customer_row_upsert(
        project=project, external_id=external_id, email=email, name=name, metadata=metadata, clock=clock
    )
    if clock is not None and not customer.stripe_customer_id:
        customer_ensure_stripe(customer=customer)  # after the commit: Stripe creates it on the clock
    return customer, created


def _customer_row_upsert(
    *,
    project: Project,
    external_id: str,
    email: str | None,
    name: str | None,
    metadata: dict[str, Any] | None,
    clock: TestClock | None,
) -> tuple[Customer, bool]:
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
                        test_clock=clock,
                    )
                    return customer, True
                changed = []
                if clock is not None and customer.test_clock_id != clock.pk:
                    if customer.stripe_customer_id:
                        raise Conflict(
                            "This customer exists at Stripe already, and Stripe cannot move a customer onto a "
                            "test clock: create a new customer on the clock instead.",
                            code="test_clock_immutable",
                            param="test_clock",
                        )
                    customer.test_clock = clock
                    changed.append("test_clock")
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
                    tell_stripe = bool(customer.stripe_customer_id) and bool({"email", "name"} & set(changed))
                    if tell_stripe:
                        customer.stripe_sync_pending = True  # durable with the change: the sweep's to-do
                        changed.append("stripe_sync_pending")
                    customer.save(update_fields=[*changed, "updated_at"])
                    if tell_stripe:
                        transaction.on_commit(partial(_queue_stripe_sync, customer.pk))
                return customer, created
        except IntegrityError:
            continue
    raise Conflict("The customer is being created concurrently; retry.", code="concurrent_update")


def _queue_stripe_sync(customer_id: str) -> None:
    """Queues the Stripe update of a committed change. A broker outage must not fail the request that made it:
    the change is stored and marked pending, and beat's sweep (`customers_stripe_sync_due`) sends it."""
    from customers.tasks import customer_sync_to_stripe

    try:
        customer_sync_to_stripe.delay(customer_id)
    except Exception as exc:  # the broker's errors name its host at most; the class is enough to act on
        logger.warning(
            "Could not queue the Stripe update of customer %s (%s); the sweep will send it.",
            customer_id,
            exc.__class__.__name__,
        )


def customer_update(
    *,
    actor: Actor,
    customer: Customer,
    email: str | None = None,
    name: str | None = None,
    metadata: dict[str, Any] | None = None,
    reason: str = "",
) -> Customer:
    """An operator's change of a customer's email, name or metadata (the admin's customer page): the API's
    upsert — Stripe told of an email or name change once it commits — and an audit row with the operator and the
    values before and after, in the same transaction. `metadata` is the whole new map: keys left out go."""
    with transaction.atomic():
        locked = Customer.objects.select_for_update().select_related("project").get(pk=customer.pk)
        before = _customer_snapshot(locked)
        if metadata is not None:
            metadata = {**dict.fromkeys(locked.metadata), **metadata}  # the upsert merges; None removes a key
        updated, _ = customer_upsert(
            project=locked.project, external_id=locked.external_id, email=email, name=name, metadata=metadata
        )
        after = _customer_snapshot(updated)
        if after != before:
            audit_record(
                actor=actor,
                action="customer.updated",
                target=updated,
                project=updated.project,
                reason=reason,
                before=before,
                after=after,
            )
    return updated


def _customer_snapshot(customer: Customer) -> dict[str, Any]:
    return {"email": customer.email, "name": customer.name, "metadata": dict(customer.metadata)}


def customer_for_purchase(*, project: Project, external_id: str) -> Customer:
    """The customer a purchase is for, created on first sight (the tenant's user id is enough to buy)."""
    customer = Customer.objects.filter(project=project, external_id=external_id).first()
    if customer is not None:
        return customer
    customer, _ = customer_upsert(project=project, external_id=external_id)
    return customer


def customers_ensure(*, project: Project, external_ids: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Our customer ids for the tenant's user ids, creating the missing customers (usage, consume and grants may
    name a user the project has not registered yet), and the user ids this call created, sorted."""
    wanted = set(external_ids)
    found = dict(
        Customer.objects.filter(project=project, external_id__in=wanted).values_list("external_id", "pk")
    )
    missing = sorted(wanted - set(found))
    if missing:
        Customer.objects.bulk_create(
            [Customer(project=project, external_id=external_id) for external_id in missing],
            ignore_conflicts=True,
        )
        found.update(
            Customer.objects.filter(project=project, external_id__in=missing).values_list("external_id", "pk")
        )
    return found, missing


def customer_ensure_stripe(*, customer: Customer) -> str:
    """The customer's Stripe id, creating the Stripe customer on first need (never inside a transaction)."""
    if customer.stripe_customer_id:
        return customer.stripe_customer_id
    gateway = gateway_for(customer.project)
    # A customer on a test clock is created on it; its key names the clock (the params differ from a create
    # without one, which Stripe would refuse to replay under the same key).
    clock = customer.test_clock.stripe_test_clock_id if customer.test_clock_id and customer.test_clock else ""
    stripe_customer = gateway.customer_create(
        email=customer.email,
        name=customer.name,
        metadata={
            "tollgate_project": customer.project_id,
            "tollgate_customer": customer.pk,
            "external_id": customer.external_id,
        },
        idem=idempotency_key("customer", customer.pk, "create", *([clock] if clock else [])),
        test_clock=clock,
    )
    # Compare-and-set: concurrent callers got the same Stripe customer (same idempotency key); one write wins.
    Customer.objects.filter(pk=customer.pk, stripe_customer_id="").update(
        stripe_customer_id=stripe_customer["id"]
    )
    customer.refresh_from_db(fields=["stripe_customer_id"])
    return customer.stripe_customer_id


def customer_sync_to_stripe(*, customer_id: str) -> None:
    """Sends the customer's email and name to Stripe when a change is pending, then clears the mark only if they
    are still the values sent (compare-and-set): a change made meanwhile stays pending for its own task or the
    sweep. Stripe's side is keyed by the values (`state_update`), so sending twice is harmless."""
    customer = Customer.objects.select_related("project").filter(pk=customer_id).first()
    if customer is None or not customer.stripe_customer_id or not customer.stripe_sync_pending:
        return
    params: dict[str, Any] = {"email": customer.email or "", "name": customer.name or ""}
    gateway_for(customer.project).customer_update(customer.stripe_customer_id, params)
    Customer.objects.filter(pk=customer.pk, email=customer.email, name=customer.name).update(
        stripe_sync_pending=False
    )


CUSTOMER_SYNC_BATCH = 500
# A change's own task (with its retries: about 30 s of backoff) sends it; the sweep takes what is older.
CUSTOMER_SYNC_SETTLE = timedelta(seconds=60)


def customers_stripe_sync_due(*, batch: int = CUSTOMER_SYNC_BATCH) -> int:
    """Beat: sends to Stripe the customer changes still pending (their task was never queued, or ran out of
    retries) once their own task had its time (CUSTOMER_SYNC_SETTLE), oldest first, up to `batch` per run. A
    customer Stripe refuses stays pending for the next run and does not hold up the others. Returns how many
    were sent."""
    pending = list(
        Customer.objects.filter(
            stripe_sync_pending=True, updated_at__lt=timezone.now() - CUSTOMER_SYNC_SETTLE
        )
        .exclude(stripe_customer_id="")
        .order_by("updated_at")
        .values_list("pk", flat=True)[:batch]
    )
    sent = 0
    for customer_id in pending:
        try:
            customer_sync_to_stripe(customer_id=customer_id)
        except Exception as exc:  # Stripe down or refusing: retried by the next run
            logger.warning(
                "Stripe update of customer %s failed (%s); the next sweep retries it.",
                customer_id,
                exc.__class__.__name__,
            )
            continue
        sent += 1
    return sent


def customer_for_stripe(
    *, account: str, stripe_customer_id: str, metadata: dict[str, Any] | None = None
) -> Customer | None:
    """Routes by the Stripe customer id we hold (indexed), then by our metadata (a customer Checkout created);
    only customers of projects billed through this Stripe `account` qualify."""
    candidates = _customers_with_stripe_id(stripe_customer_id) if stripe_customer_id else []
    customer = next((c for c in candidates if stripe_account_of(c.project) == account), None)
    if customer is None and metadata and metadata.get("tollgate_customer"):
        linked = Customer.objects.select_related("project").filter(pk=metadata["tollgate_customer"]).first()
        if linked is not None and stripe_account_of(linked.project) == account:
            customer = linked
            if not customer.stripe_customer_id:
                Customer.objects.filter(pk=customer.pk, stripe_customer_id="").update(
                    stripe_customer_id=stripe_customer_id
                )
    if customer is not None:
        subjects_note(project=customer.project.slug, customer=customer.external_id)
    return customer


def _customers_with_stripe_id(stripe_customer_id: str) -> list[Customer]:
    """The customers (with their projects) holding a Stripe customer id: one indexed read that every Stripe
    event of a customer makes."""
    return statements.WITH_STRIPE_ID.rows(stripe_customer_id=stripe_customer_id)


def customer_stripe_unlink(*, customer: Customer, stripe_customer_id: str) -> None:
    """A Stripe customer was deleted at Stripe: the tenant's customer no longer holds it (if it still held that
    one), so the next purchase creates a new one. An erased customer keeps the id: its deletion was ours, and
    later events of that Stripe customer are known by it (the inbox stores them without the person)."""
    Customer.objects.filter(
        pk=customer.pk, stripe_customer_id=stripe_customer_id, erased_at__isnull=True
    ).update(stripe_customer_id="")
