"""A person's data, erased (issue #29, "privacy requests"): the one use case that reaches into every app that
keeps something of them, each app scrubbing its own rows (`<app>.services.*_erasure`, `core.privacy`).

Order, so that a retry continues and nothing is left half done:

1. Refused while the customer has live subscriptions (409 `customer_has_live_subscriptions`): deleting the
   Stripe customer would cancel them, and a cancellation is the tenant's to ask for.
2. The Stripe customer is deleted (outside any transaction; one already gone is what we wanted).
3. One transaction, under the customer's row lock: the customer's own fields replaced (its user id by a random
   tombstone), every other app's rows scrubbed, and the audit row (the actor, the reason without the person's
   values, the counts — nothing personal) written.
4. Once committed, the Stripe events that arrived meanwhile (Stripe's `customer.deleted` above all) are scrubbed;
   later ones are stored scrubbed (`webhooks.services.event_erasure`).

A failure in 2 or 3 changes nothing here, and the retry does it again (Stripe's delete of a deleted customer is
a success). Amounts, currencies, invoice numbers, tax, statuses, dates and Stripe ids are kept: the revenue
figures and reconciliation are what they were.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from billing.services.customer_erasure import billing_anonymise, customer_erasable_check
from core.actors import Actor
from core.audit import audit_record
from core.errors import InvalidRequest
from core.privacy import Erasure, audit_entries_anonymise, idempotency_records_anonymise
from customers import selectors as customer_selectors
from customers.models import Customer
from customers.services.customer_erasure import (
    customer_anonymise,
    customer_erasure_of,
    customer_stripe_delete,
)
from entitlements.services.customer_erasure import entitlements_anonymise
from events.services.event_erasure import events_anonymise
from projects.models import Project
from stripe_gateway.gateway import stripe_account_of
from webhooks.services.event_erasure import stripe_events_anonymise, stripe_events_learn


@dataclass(frozen=True)
class CustomerErasure:
    """What an erasure did: the customer's id and tombstone, when, whether a Stripe customer was deleted, and how
    many rows of each kind were scrubbed."""

    customer: Customer
    stripe_customer_deleted: bool
    scrubbed: dict[str, int]

    @property
    def erased_at(self) -> datetime | None:
        return self.customer.erased_at


def customer_erase(*, project: Project, external_id: str, reason: str, actor: Actor) -> CustomerErasure:
    """Erases the person behind the project's customer `external_id` (or our id; see the module's docstring).
    404 for a customer the project does not have or has erased, then 400 `reason_required` without a reason."""
    customer = customer_selectors.customer_lookup(project=project, customer_id=external_id)
    reason = reason.strip()
    if not reason:
        raise InvalidRequest("Say why the data is erased (`reason`).", code="reason_required", param="reason")
    customer_erasable_check(customer=customer)
    stripe_deleted = customer_stripe_delete(customer=customer)
    account = stripe_account_of(project)
    with transaction.atomic(durable=True):
        locked = Customer.objects.select_for_update().select_related("project").get(pk=customer.pk)
        if locked.erased_at is not None:  # a concurrent erasure finished first
            return CustomerErasure(customer=locked, stripe_customer_deleted=stripe_deleted, scrubbed={})
        customer_erasable_check(customer=locked)
        erasure, tombstone = customer_erasure_of(customer=locked)
        stripe_events_learn(account=account, stripe_customer_id=locked.stripe_customer_id, erasure=erasure)
        old_external_id = locked.external_id
        customer_anonymise(customer=locked, tombstone=tombstone)
        scrubbed = {
            "billing": billing_anonymise(customer=locked, erasure=erasure),
            "entitlements": entitlements_anonymise(
                customer=locked, external_id=old_external_id, erasure=erasure
            ),
            "events": events_anonymise(project=project, erasure=erasure),
            "stripe_events": stripe_events_anonymise(
                account=account, stripe_customer_id=locked.stripe_customer_id, erasure=erasure
            ),
            "audit_log": audit_entries_anonymise(
                project_id=project.pk, target_ids=[locked.pk], erasure=erasure
            ),
            "idempotency_keys": idempotency_records_anonymise(owner=f"project:{project.pk}", erasure=erasure),
        }
        audit_record(
            actor=actor,
            action="customer.erased",
            target=locked,
            project=project,
            reason=erasure.text(reason),
            after={"stripe_customer_deleted": stripe_deleted, "rows_scrubbed": scrubbed},
        )
    if locked.stripe_customer_id:
        # What Stripe sent between the delete and the commit (its `customer.deleted`) was stored as sent.
        with transaction.atomic(durable=True):
            stripe_events_anonymise(
                account=account, stripe_customer_id=locked.stripe_customer_id, erasure=Erasure()
            )
    return CustomerErasure(customer=locked, stripe_customer_deleted=stripe_deleted, scrubbed=scrubbed)
