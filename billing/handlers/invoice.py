"""Stripe's `invoice.*` events: the invoice's mirror follows Stripe's, and a paid (or failed) one settles its
payment; a void one may end its subscription (`first_invoice_voids`)."""

from billing.handlers.event import StripeEventIn
from billing.handlers.lookups import gateway_of, invoice_intent_link_told, invoice_payment_intent
from billing.services.first_invoice_voids import first_invoice_void_end
from billing.services.invoices import (
    DraftAmbiguous,
    invoice_apply,
    invoice_payment_apply,
    invoice_refetch_and_apply,
)


def invoice_changed(event: StripeEventIn) -> None:
    """Mirrors the invoice; a paid one (whichever event says so: `invoice.paid` may be lost while
    `invoice.payment_succeeded` arrives) settles its payment, a failed attempt records it."""
    stripe_invoice = event.data_object
    paid = stripe_invoice.get("status") == "paid"
    settles = paid or event.type == "invoice.payment_failed"
    wants_intent = settles and bool(int(stripe_invoice.get("amount_paid") or 0) or not paid)
    # What the stored events told, when invoice_apply asked them (its mirror knew no PaymentIntent yet).
    told: dict[str, str] = {}

    def told_payment_intent(invoice_id: str) -> str:
        told[invoice_id] = event.told_payment_intent(invoice_id)
        return told[invoice_id]

    try:
        local = invoice_apply(
            account=event.account,
            stripe_invoice=stripe_invoice,
            event_created=event.stripe_created,
            told_payment_intent=told_payment_intent if wants_intent else None,
        )
    except DraftAmbiguous:  # a draft's two changes in one second: Stripe's draft as it is now decides
        # A draft settles nothing; whatever the read finds since (finalized, paid, voided) its own events apply.
        invoice_refetch_and_apply(
            account=event.account,
            gateway=gateway_of(event),
            stripe_invoice_id=stripe_invoice["id"],
            event_created=event.stripe_created,
        )
        return
    if local is None:
        return
    # A void first invoice ends its subscription where the project says so (asked again on a replay).
    if local.status == "void":
        first_invoice_void_end(invoice=local)
    if not settles:
        if not local.stripe_payment_intent_id and int(stripe_invoice.get("attempt_count") or 0):
            # no Stripe read: a stored invoice_payment event
            invoice_intent_link_told(event, local.stripe_invoice_id, invoice=local)
        return
    learned = wants_intent and (bool(told) or not local.stripe_payment_intent_id)
    intent = invoice_payment_intent(event, local, told=bool(told)) if wants_intent else ""
    invoice_payment_apply(
        invoice=local,
        stripe_invoice=stripe_invoice,
        payment_intent_id=intent,
        paid=paid,
        intent_learned=learned,
    )
