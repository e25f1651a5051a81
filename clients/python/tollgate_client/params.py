"""Shapes of the structured request parameters (plain dicts, typed for the editor and mypy)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

__all__ = ["CreditNoteLineItem", "LineItem", "UsageEventParams"]


class _LineItemRequired(TypedDict):
    price: str
    """The price's `key` or `id`."""


class LineItem(_LineItemRequired, total=False):
    """One line of a cart checkout, a payment or a subscription's `items`: `{"price": "credits-1000", "quantity": 2}`."""

    quantity: int


class _CreditNoteLineItemRequired(TypedDict):
    invoice_line: int
    """The index of the invoice line credited, in the invoice's `lines`."""


class CreditNoteLineItem(_CreditNoteLineItemRequired, total=False):
    """One line of `credit_notes.create`: `{"invoice_line": 0, "quantity": 1}` or `{"invoice_line": 0, "amount": 500}`
    (one of the two)."""

    quantity: int
    amount: int
    """Minor units."""


class _UsageEventRequired(TypedDict):
    id: str
    """Your idempotency id for the event: the same id again is counted once."""
    customer: str
    feature: str
    quantity: int


class UsageEventParams(_UsageEventRequired, total=False):
    """One event of `usage.record_batch`."""

    timestamp: str | datetime
    properties: dict[str, Any]
    entity: str
    """One of the customer's entities the use is theirs too (a metered feature with a limit per entity)."""
    no_billing_side_effects: bool
    """A backfill: may be stamped in a closed period; never sent to Stripe's meter."""
