"""A person's data in the stored Stripe events (issue #29): Stripe's payloads carry their email, name, phone and
address (`customer.*`, `checkout.session.*`, `invoice.*`, `charge.*`). An erasure scrubs the events of the
person's Stripe customer; an event that arrives later about an erased customer is stored already scrubbed."""

from typing import Any

from django.db.models import Q, QuerySet

from core.privacy import SCRUB_BATCH, Erasure, matching, scrub_rows
from customers.services.customer_erasure import customer_erased_for_stripe
from webhooks.models import StripeEvent


def stripe_events_of_customer(
    *, account: str, stripe_customer_id: str, erasure: Erasure
) -> QuerySet[StripeEvent]:
    """The account's events about the Stripe customer (keyed by it, or naming it), or quoting the person."""
    about = Q(pk__in=[])
    if stripe_customer_id:
        about = Q(ordering_key=f"{account}:{stripe_customer_id}") | Q(payload__icontains=stripe_customer_id)
    return StripeEvent.objects.filter(account=account).filter(
        about | matching(("payload",), erasure.json_needles)
    )


def stripe_events_learn(*, account: str, stripe_customer_id: str, erasure: Erasure) -> None:
    """Adds to the erasure what Stripe told of the person (address lines, phone, the name typed at Checkout), so
    that copies of those values elsewhere are found too."""
    events = stripe_events_of_customer(
        account=account, stripe_customer_id=stripe_customer_id, erasure=erasure
    )
    for payload in events.values_list("payload", flat=True).iterator(chunk_size=SCRUB_BATCH):
        erasure.learn(payload)


def stripe_events_anonymise(*, account: str, stripe_customer_id: str, erasure: Erasure) -> int:
    """Scrubs the events' payloads (and errors) of the person; ids, amounts, statuses and dates stay, so a replay
    applies the same money facts. Returns how many events changed."""
    events = stripe_events_of_customer(
        account=account, stripe_customer_id=stripe_customer_id, erasure=erasure
    )
    return scrub_rows(events, json_fields=("payload",), text_fields=("last_error",), erasure=erasure)


def stripe_event_body_for_storage(*, ordering_key: str, body: dict[str, Any]) -> dict[str, Any]:
    """The body to store: as received, unless the Stripe customer it is about was erased (`customer.deleted`
    arriving after the erasure, an old event re-sent), then without the person's details."""
    stripe_customer_id = ordering_key.rpartition(":")[2]
    if stripe_customer_id.startswith("cus_") and customer_erased_for_stripe(
        stripe_customer_id=stripe_customer_id
    ):
        scrubbed: dict[str, Any] = Erasure().json(body)
        return scrubbed
    return body
