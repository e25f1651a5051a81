"""What billing's handlers are told of one Stripe event: facts, handed down by the inbox, whose stored rows stay
its own (billing reads no table above it)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StripeEventIn:
    stripe_event_id: str
    type: str
    # `platform`, or the id of the project whose own Stripe account sent the event.
    account: str
    project_id: str | None
    # Stripe's `created` (Unix seconds): orders the events of one object.
    stripe_created: int
    data_object: dict[str, Any]
    # The PaymentIntent that an `invoice_payment.*` event of the invoice, stored already, names; or "". Asked
    # only when billing does not know an invoice's PaymentIntent (the inbox answers from its stored events).
    told_payment_intent: Callable[[str], str]
