"""Invoices, invoice line items, pending invoice items and invoice payments: the money side of subscriptions.

Lifecycle: ``draft`` → ``open`` (finalized: ``number``, hosted page, PDF) → ``paid`` | ``void`` |
``uncollectible``. Collection (``charge_automatically``) goes through the payments service: each invoice owns
one PaymentIntent (created at the first attempt, reused by retries) recorded as an ``invoice_payment``. A
PaymentIntent that succeeds later (3-D Secure completed, a retry, ``POST /v1/invoices/{id}/pay``) pays the
invoice through :func:`on_payment_intent_status`, which the payments service calls on every status change.

Amounts: ``subtotal`` = ``total`` = sum of the lines; at finalization the customer's balance is applied
(``starting_balance``/``ending_balance``), so ``amount_due`` = max(0, ``total`` + balance);
``amount_remaining`` = ``amount_due`` − ``amount_paid``. A negative total becomes customer credit.

The backend is composed from :mod:`.base` (reads, totals), :mod:`.drafts` (new invoices, lines, pending
invoice items), :mod:`.items` (``/v1/invoiceitems``) and :mod:`.collection` (finalization, payment, other transitions, retries); only
:class:`InvoicesBackend` is ever passed to ``account.backend()``. Credit notes (:mod:`.credit_notes`) are a
backend of their own, ``CreditNotesBackend``, that adjusts invoices through this one.
"""

from __future__ import annotations

from stripe_emulator.core.account import Account
from stripe_emulator.core.store import StripeObject
from stripe_emulator.subscriptions.invoices.collection import InvoiceCollection
from stripe_emulator.subscriptions.invoices.items import InvoiceItems


class InvoicesBackend(InvoiceItems, InvoiceCollection):
    """Invoices, invoice line items, pending invoice items and invoice payments on one account."""


def on_payment_intent_status(account: Account, payment_intent: StripeObject, previous_status: str) -> None:
    """Registered on ``PaymentsBackend.status_listeners``: an invoice whose PaymentIntent succeeds later
    (3-D Secure completed, confirmed by the client with ``confirmation_secret``) becomes paid."""
    if payment_intent.get("status") != "succeeded" or previous_status == "succeeded":
        return
    for record in account.store.iter_type("invoice_payment"):
        if record["payment"].get("payment_intent") != payment_intent["id"]:
            continue
        invoice = account.store.get("invoice", record["invoice"])
        if invoice is not None and invoice["status"] in ("open", "uncollectible"):
            account.backend(InvoicesBackend)._mark_paid(invoice, payment_intent)


__all__ = ["InvoicesBackend", "on_payment_intent_status"]
