"""Stripe's `invoice.*` events: the invoice's mirror follows Stripe's, and a paid (or failed) one settles its
payment."""

from billing.handlers.event import StripeEventIn
from billing.handlers.lookups import invoice_intent_link_told, invoice_payment_intent
from billing.services.invoices import invoice_apply, invoice_payment_apply


def invoice_changed(event: StripeEventIn) -> None:
    """Mirrors the invoice; a paid one (whichever event says so: `invoice.paid` may be lost while
    `invoice.payment_succeeded` arrives) settles its payment, a failed attempt records it."""
    stripe_invoice = event.data_object
    local = invoice_apply(
        account=event.account, stripe_invoice=stripe_invoice, event_created=event.stripe_created
    )
    if local is None:
        return
    paid = stripe_invoice.get("status") == "paid"
    if not (paid or event.type == "invoice.payment_failed"):
        if not local.stripe_payment_intent_id and int(stripe_invoice.get("attempt_count") or 0):
            invoice_intent_link_told(
                event, local.stripe_invoice_id
            )  # no read: a stored invoice_payment event
        return
    intent = (
        invoice_payment_intent(event, local)
        if int(stripe_invoice.get("amount_paid") or 0) or not paid
        else ""
    )
    invoice_payment_apply(invoice=local, stripe_invoice=stripe_invoice, payment_intent_id=intent, paid=paid)
