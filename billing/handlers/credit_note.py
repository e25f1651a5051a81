"""Stripe's `credit_note.*` events: the credit note's mirror follows Stripe's (its invoice's new amounts come with
the `invoice.updated` Stripe sends beside them)."""

from billing.handlers.event import StripeEventIn
from billing.handlers.lookups import NotYetMirrored
from billing.services.credit_notes import InvoiceNotMirrored, credit_note_apply


def credit_note_changed(event: StripeEventIn) -> None:
    """Mirrors the credit note; one of an invoice whose own events are still on their way is applied after them
    (a retry), rather than lost."""
    try:
        credit_note_apply(
            account=event.account, stripe_credit_note=event.data_object, event_created=event.stripe_created
        )
    except InvoiceNotMirrored as exc:
        raise NotYetMirrored(str(exc)) from exc
