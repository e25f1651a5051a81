"""Stripe's `invoice_payment.paid`: which PaymentIntent paid an invoice (no Stripe read needed later)."""

from billing.handlers.event import StripeEventIn
from billing.handlers.lookups import invoice_of_account
from billing.services.invoices import invoice_link_payment_intent
from stripe_gateway.gateway import stripe_id


def invoice_payment_paid(event: StripeEventIn) -> None:
    record = event.data_object
    intent = stripe_id((record.get("payment") or {}).get("payment_intent"))
    local = invoice_of_account(event, stripe_invoice_id=stripe_id(record.get("invoice")))
    if local is not None and intent:
        invoice_link_payment_intent(invoice=local, payment_intent_id=intent)
