"""An open invoice made at Stripe the way a tenant's finance team bills a customer from Stripe's dashboard."""

from typing import Any


def open_invoice_at_stripe(sdk: Any, stripe_customer: str, amount: int, currency: str = "usd") -> str:
    """An invoice of one item of `amount`, billed by invoice (`send_invoice`, due in 30 days: it stays open until
    paid), finalized at Stripe; its Stripe id. Its events are queued, not delivered."""
    draft = sdk.v1.invoices.create(
        {"customer": stripe_customer, "collection_method": "send_invoice", "days_until_due": 30}
    )
    sdk.v1.invoice_items.create(
        {"customer": stripe_customer, "invoice": draft.id, "amount": amount, "currency": currency}
    )
    return str(sdk.v1.invoices.finalize_invoice(draft.id).id)
