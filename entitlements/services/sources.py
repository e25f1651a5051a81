"""The facts billing hands entitlements: what a subscription holds and its state (`subscription_source_put`), what
a payment bought and its status (`PaymentFacts`, taken by `payment_entitlements_apply`) and what a paid period
invoice billed (`PlanPeriodFacts`, taken by `plan_period_record`). Entitlements decides from them alone what a
customer may use; it never reads billing's tables. Billing hands each fact from one place, in the transaction that
changes its own row.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from entitlements.models import SubscriptionSource, SubscriptionVersion


@dataclass(frozen=True)
class SubscriptionItemFact:
    product_id: str
    price_id: str
    metered: bool
    quantity: int | None  # None for a metered item (billed in arrears)
    version: int = 1  # the product's version the item is on (`catalog.ProductVersion`)
    # A move to another version scheduled for `pending_at` (the period's end), or None.
    pending_version: int | None = None
    pending_at: datetime | None = None


@dataclass(frozen=True)
class SubscriptionFacts:
    """A subscription as billing mirrors it: the primary item's product and quantity, every item in order, and
    the state the resolver's rules read."""

    id: str
    project_id: str
    customer_id: str
    product_id: str
    quantity: int
    items: list[SubscriptionItemFact]
    status: str
    current_period_start: datetime | None
    current_period_end: datetime | None
    interval: str
    interval_count: int
    cancel_at_period_end: bool
    trial_end: datetime | None
    canceled_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PaymentLineFact:
    price_id: str
    quantity: int


@dataclass(frozen=True)
class PaymentFacts:
    """A payment whose status or dispute changed: whose it is, what it bought (its lines: price and quantity, in
    order), when it succeeded, its status and dispute outcome, its reference and why it failed."""

    id: str
    project_id: str
    customer_id: str
    status: str
    dispute_status: str
    succeeded_at: datetime | None
    lines: list[PaymentLineFact] = field(default_factory=list)
    reference: str = ""  # the payment's reference: an auto-recharge's charge names its attempt there
    error_code: str = ""  # why it failed (Stripe's decline or error code), when it did


@dataclass(frozen=True)
class PlanLineFact:
    """What a period invoice billed of one product (on which of its versions): how many units, for which
    period."""

    product_id: str
    quantity: int
    period_start: datetime
    period_end: datetime
    version: int | None = None  # the product's version the subscription is on (None: its latest)


@dataclass(frozen=True)
class PlanPeriodFacts:
    """A paid `subscription_create`, `subscription_cycle` or `subscription_update` invoice: its payment, the
    invoice, and what it billed in advance (one line per product of the subscription, counted as the resolver
    counts them; empty when no line names a catalog price, or when a change billed prorations only)."""

    payment_id: str
    invoice_id: str
    invoice_number: str
    lines: list[PlanLineFact]
    # The invoice's subscription as billing names it on both sides (its Stripe id, known with the invoice even
    # before the subscription is mirrored): its end stops the credits still to come.
    subscription_id: str = ""
    reason: str = ""  # the invoice's billing reason (a change's invoice may bill no period: prorations only)
    # When that subscription ended, as billing knew it when it read the invoice: a cancellation learned before
    # the invoice's payment stops the slices from then on as they are made (`plan_credits.plan_period_record`).
    ended_at: datetime | None = None


# What a subscription's state is made of (`SubscriptionState`'s fields, by attribute name), whose it is included.
SOURCE_FIELDS = (
    "project_id",
    "customer_id",
    "product_id",
    "quantity",
    "items",
    "status",
    "current_period_start",
    "current_period_end",
    "interval",
    "interval_count",
    "cancel_at_period_end",
    "trial_end",
    "canceled_at",
    "created_at",
    "updated_at",
)


def _source_fields(facts: SubscriptionFacts) -> dict[str, Any]:
    return {
        "project_id": facts.project_id,
        "customer_id": facts.customer_id,
        "product_id": facts.product_id,
        "quantity": facts.quantity,
        "items": [
            {
                "product": item.product_id,
                "price": item.price_id,
                "metered": item.metered,
                "quantity": item.quantity,
                "version": item.version,
                **(
                    {"pending_version": item.pending_version, "pending_at": item.pending_at.isoformat()}
                    if item.pending_version is not None and item.pending_at is not None
                    else {}
                ),
            }
            for item in facts.items
        ],
        "status": facts.status,
        "current_period_start": facts.current_period_start,
        "current_period_end": facts.current_period_end,
        "interval": facts.interval,
        "interval_count": facts.interval_count,
        "cancel_at_period_end": facts.cancel_at_period_end,
        "trial_end": facts.trial_end,
        "canceled_at": facts.canceled_at,
        "created_at": facts.created_at,
        "updated_at": facts.updated_at,
    }


def subscription_source_put(*, facts: SubscriptionFacts) -> None:
    """Records what billing's subscription is now (created on first sight), and appends it to the subscription's
    versions (what a point-in-time check reads). Runs in the caller's transaction (billing's mirror, which holds
    the subscription's row lock); announcing what changed is the recompute's."""
    fields = _source_fields(facts)
    # One statement whether it is new or not (INSERT … ON CONFLICT (id) DO UPDATE).
    SubscriptionSource.objects.bulk_create(
        [SubscriptionSource(id=facts.id, **fields)],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=list(fields),
    )
    SubscriptionVersion.objects.create(subscription_id=facts.id, recorded_at=timezone.now(), **fields)
