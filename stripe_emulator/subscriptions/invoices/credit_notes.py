"""Credit notes (``/v1/credit_notes``): adjustments of a finalized (``open`` or ``paid``) invoice, as Stripe
documents them at this API version.

A credit note first reduces the invoice's ``amount_remaining`` (and ``amount_due``), never below zero: that
part is its ``pre_payment_amount`` and adds to the invoice's ``pre_payment_credit_notes_amount``; an open
invoice brought to zero is paid. The rest, ``post_payment_amount`` (added to the invoice's
``post_payment_credit_notes_amount``), must be given out exactly by ``refund_amount`` (a new Refund of the
invoice's payment, made by the payments service's own refund code), ``refunds[]`` (existing refunds of that
payment linked to it), ``credit_amount`` (a ``credit_note`` entry in the customer's balance ledger, the
balance going down) and ``out_of_band_amount``. ``type`` is ``pre_payment``, ``post_payment`` or ``mixed``.

Its lines credit invoice lines by ``quantity`` or by ``amount`` (never both ways on one invoice line, as
Stripe refuses), each line taking its share of the invoice line's discounts and taxes (shares are rounded
cumulatively, so crediting a line in several notes adds up to exactly the line), or are custom lines
(``unit_amount`` × ``quantity``, not on automatic-tax invoices); a credit note of an ``amount`` has no lines.
All credit notes of an invoice, and refunds of its payment made outside them, together never exceed its
``total``.

Voiding gives back what the credit note credited: the invoice's amounts, and the customer's balance (a
reversing ``credit_note`` entry). A credit note that refunded money cannot be voided (the refund cannot be
taken back), and one that reduced the amount due only while its invoice is still open.

A preview is the same computation with nothing stored: no object, no refund, no event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.account import BaseBackend
from stripe_emulator.core.errors import InvalidRequestError, ResourceMissing
from stripe_emulator.core.html import format_amount
from stripe_emulator.core.params import in_range
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.customers.balance import CustomerBalanceBackend
from stripe_emulator.subscriptions.invoices import InvoicesBackend
from stripe_emulator.subscriptions.invoices.base import payments_backend
from stripe_emulator.subscriptions.invoices.credit_note_lines import (
    LineSpec,
    credit,
    custom_line,
    invoice_line_credit,
    pretax,
)
from stripe_emulator.subscriptions.settings import public_url
from stripe_emulator.tax import split, sum_taxes

OBJECT = "credit_note"
REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")
# A credit note's reason as the reason of the refund it makes (Refunds take only these).
REFUND_REASONS = {"duplicate": "duplicate", "fraudulent": "fraudulent"}
OPEN_INTENT_STATUSES = ("requires_payment_method", "requires_confirmation", "requires_action")


@dataclass
class RefundLink:
    """One ``refunds[i]`` param: an existing refund to link, and how much of it applies."""

    param: str
    refund: str
    amount_refunded: int | None = None


@dataclass
class CreditNoteSpec:
    """A create or preview request, parsed from the wire."""

    invoice: str
    amount: int | None = None
    lines: list[LineSpec] | None = None
    refund_amount: int | None = None
    credit_amount: int | None = None
    out_of_band_amount: int | None = None
    refunds: list[RefundLink] = field(default_factory=list)
    reason: str | None = None
    memo: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    effective_at: int | None = None
    shipping_cost: bool = False


@dataclass
class _Plan:
    """What a credit note would be (``refunds`` still empty), its invoice, and what creating it refunds: the
    PaymentIntent ``refund_amount`` refunds, and the entries of the existing refunds it links."""

    note: StripeObject
    invoice: StripeObject
    refund_from: str | None = None  # the PaymentIntent ``refund_amount`` refunds
    links: list[dict[str, Any]] = field(default_factory=list)


class CreditNotesBackend(BaseBackend):
    # -- reads ---------------------------------------------------------------------------------------------

    def credit_note_require(self, credit_note_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require(OBJECT, credit_note_id, param=param)

    def credit_note_list(
        self,
        *,
        invoice: str | None = None,
        customer: str | None = None,
        created: dict[str, int] | None = None,
    ) -> list[StripeObject]:
        return self.store.newest_first(
            OBJECT,
            lambda n: (
                (invoice is None or n["invoice"] == invoice)
                and (customer is None or n["customer"] == customer)
                and in_range(n["created"], created)
            ),
        )

    def _notes_of(self, invoice_id: str) -> list[StripeObject]:
        return [n for n in self.store.iter_type(OBJECT) if n["invoice"] == invoice_id]

    # -- create, preview -----------------------------------------------------------------------------------

    def credit_note_preview(self, spec: CreditNoteSpec, *, line_id: Callable[[int], str]) -> StripeObject:
        """``GET /v1/credit_notes/preview``: the credit note ``spec`` would create, stored nowhere."""
        plan = self._plan(spec, line_id=line_id, note_id=ids.new_id("cn"))
        plan.note["refunds"] = [dict(link) for link in plan.links]
        return plan.note

    def credit_note_create(self, spec: CreditNoteSpec) -> StripeObject:
        note_id = ids.new_id("cn")
        plan = self._plan(spec, line_id=lambda _: ids.new_id("cnli"), note_id=note_id)
        note, invoice = plan.note, plan.invoice
        # Everything is validated: from here on nothing refuses but the refund itself (a charge disputed
        # meanwhile), which runs first so that a refusal leaves no trace.
        refunds: list[dict[str, Any]] = []
        if plan.refund_from is not None:
            refund = payments_backend(self.account).refund_create(
                payment_intent=plan.refund_from,
                amount=spec.refund_amount,
                reason=REFUND_REASONS.get(spec.reason or ""),
                metadata={},
            )
            refunds.append(_refund_entry(refund["id"], refund["amount"]))
        refunds += plan.links
        note["refunds"] = refunds
        if spec.credit_amount:
            txn = self.account.backend(CustomerBalanceBackend).balance_apply(
                invoice["customer"],
                -spec.credit_amount,
                type="credit_note",
                currency=invoice["currency"],
                credit_note=note_id,
                param="credit_amount",
            )
            note["customer_balance_transaction"] = txn["id"]
        self.store.insert(note)
        self.emit("credit_note.created", note)
        self._adjust_invoice(invoice, pre=note["pre_payment_amount"], post=note["post_payment_amount"])
        return note

    def _plan(self, spec: CreditNoteSpec, *, line_id: Callable[[int], str], note_id: str) -> _Plan:
        invoices = self.account.backend(InvoicesBackend)
        invoice = invoices.invoice_require(spec.invoice, param="invoice")
        if invoice["status"] not in ("open", "paid"):
            raise InvalidRequestError(
                f"You can only create a credit note for an open or paid invoice; invoice {invoice['id']} is "
                f"{invoice['status']}.",
                code="invoice_not_editable",
                param="invoice",
            )
        if spec.shipping_cost:
            raise InvalidRequestError(
                f"Invoice {invoice['id']} has no shipping cost to credit.",
                param="shipping_cost[shipping_rate]",
            )
        if spec.amount is None and spec.lines is None:
            raise InvalidRequestError(
                "One of `amount`, `lines`, or `shipping_cost` must be provided.", param="lines"
            )
        if spec.amount is not None and spec.lines is not None:
            raise InvalidRequestError(
                "You may only specify one of these parameters: amount, lines.", param="amount"
            )
        currency = invoice["currency"]
        lines = self._lines(invoice, spec.lines or [], line_id)
        subtotal = int(spec.amount or 0) if spec.lines is None else sum(line["amount"] for line in lines)
        discount_amount = sum(line["discount_amount"] for line in lines)
        all_taxes = [tax for line in lines for tax in line["taxes"]]
        exclusive, inclusive = split(all_taxes)
        total = subtotal - discount_amount + exclusive
        where = "amount" if spec.lines is None else "lines"
        if total <= 0:
            raise InvalidRequestError("A credit note's total must be greater than zero.", param=where)

        # What can still be credited: the invoice's total, less its credit notes and the refunds of its
        # payment made outside them (linked refunds are inside).
        payments = payments_backend(self.account)
        intents = self._payment_intents(invoice)
        if intents:
            payments.refunds_settle_before_read()
        linked = self._linked_refunds()
        links = self._links(invoice, spec.refunds, intents, linked)
        for link in links:
            linked[link["refund"]] = linked.get(link["refund"], 0) + link["amount_refunded"]
        outside = sum(
            max(0, r["amount"] - linked.get(r["id"], 0))
            for r in self.store.iter_type("refund")
            if r["payment_intent"] in intents and r["status"] not in ("failed", "canceled")
        )
        issued = [n for n in self._notes_of(invoice["id"]) if n["status"] == "issued"]
        creditable = invoice["total"] - sum(n["total"] for n in issued) - outside
        if total > creditable:
            raise InvalidRequestError(
                f"The credit note's total ({format_amount(total, currency)}) is greater than the amount that "
                f"can still be credited on invoice {invoice['id']} ({format_amount(max(creditable, 0), currency)}).",
                param=where,
            )

        remaining = int(invoice["amount_remaining"]) if invoice["status"] == "open" else 0
        pre = min(total, max(remaining, 0))
        post = total - pre
        distribution = [
            ("refund_amount", spec.refund_amount or 0),
            ("credit_amount", spec.credit_amount or 0),
            ("out_of_band_amount", spec.out_of_band_amount or 0),
            ("refunds", sum(link["amount_refunded"] for link in links)),
        ]
        given = sum(value for _, value in distribution)
        if given != post:
            raise InvalidRequestError(
                f"The sum of refunds, customer balance credits and outside of Stripe credits "
                f"({format_amount(given, currency)}) must equal the credit note's post_payment_amount "
                f"({format_amount(post, currency)}): the part of its total "
                f"({format_amount(total, currency)}) beyond what the invoice still has to be paid "
                f"({format_amount(pre, currency)}).",
                param=next((name for name, value in distribution if value), None),
            )
        refund_from = None
        if spec.refund_amount:
            refund_from = self._refundable_intent(invoice, intents, spec.refund_amount)
        if spec.credit_amount:
            self.store.require("customer", invoice["customer"], param="credit_amount")

        created = self.now()
        note: StripeObject = {
            "id": note_id,
            "object": OBJECT,
            "amount": total,
            "amount_shipping": 0,
            "created": created,
            "currency": currency,
            "customer": invoice["customer"],
            "customer_account": None,
            "customer_balance_transaction": None,
            "discount_amount": discount_amount,
            "discount_amounts": _sum_discounts(lines),
            "effective_at": spec.effective_at if spec.effective_at is not None else created,
            "invoice": invoice["id"],
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": False,
                "url": f"/v1/credit_notes/{note_id}/lines",
            },
            "livemode": False,
            "memo": spec.memo,
            "metadata": dict(spec.metadata),
            "number": f"{invoice['number']}-CN-{len(self._notes_of(invoice['id'])) + 1:02d}",
            "out_of_band_amount": spec.out_of_band_amount,
            "pdf": public_url(self.account, f"/invoices/{invoice['id']}/credit_notes/{note_id}/pdf"),
            "post_payment_amount": post,
            "pre_payment_amount": pre,
            "pretax_credit_amounts": _sumpretax(lines),
            "reason": spec.reason,
            "refunds": [],
            "shipping_cost": None,
            "status": "issued",
            "subtotal": subtotal,
            "subtotal_excluding_tax": subtotal - inclusive,
            "total": total,
            "total_excluding_tax": total - exclusive - inclusive,
            "total_taxes": sum_taxes(all_taxes),
            "type": "pre_payment" if post == 0 else "post_payment" if pre == 0 else "mixed",
            "voided_at": None,
        }
        return _Plan(note=note, invoice=invoice, refund_from=refund_from, links=links)

    # -- lines ---------------------------------------------------------------------------------------------

    def _lines(
        self, invoice: StripeObject, specs: list[LineSpec], line_id: Callable[[int], str]
    ) -> list[Any]:
        by_id = {line["id"]: line for line in invoice["lines"]["data"]}
        # What the invoice's issued credit notes already credited, per invoice line: quantity or amount
        # (whichever way it was credited) and the gross amount.
        credited: dict[str, dict[str, Any]] = {}
        for note in self._notes_of(invoice["id"]):
            if note["status"] != "issued":
                continue
            for line in note["lines"]["data"]:
                if line["type"] == "invoice_line_item":
                    credit(credited, line["invoice_line_item"], line)
        lines = []
        for index, spec in enumerate(specs):
            if spec.type == "invoice_line_item":
                line = invoice_line_credit(self.store, by_id, credited, spec)
            else:
                line = custom_line(invoice, spec)
            line["id"] = line_id(index)
            lines.append(line)
        return lines

    # -- the invoice's payment -----------------------------------------------------------------------------

    def _payment_intents(self, invoice: StripeObject) -> list[str]:
        """The PaymentIntents that paid (or try to pay) the invoice, its current one first."""
        intents: list[str] = []
        if invoice.get("_payment_intent"):
            intents.append(str(invoice["_payment_intent"]))
        for record in self.account.backend(InvoicesBackend).invoice_payments_of(invoice["id"]):
            pi = record["payment"].get("payment_intent")
            if pi and pi not in intents:
                intents.append(pi)
        return intents

    def _linked_refunds(self) -> dict[str, int]:
        """How much of each refund the issued credit notes of the account account for."""
        linked: dict[str, int] = {}
        for note in self.store.iter_type(OBJECT):
            if note["status"] == "issued":
                for entry in note["refunds"]:
                    linked[entry["refund"]] = linked.get(entry["refund"], 0) + int(entry["amount_refunded"])
        return linked

    def _links(
        self, invoice: StripeObject, refunds: list[RefundLink], intents: list[str], linked: dict[str, int]
    ) -> list[dict[str, Any]]:
        links: list[dict[str, Any]] = []
        taken = dict(linked)
        for link in refunds:
            refund = self.store.get("refund", link.refund)
            if refund is None:
                raise ResourceMissing("refund", link.refund, param=f"{link.param}[refund]")
            if refund["payment_intent"] not in intents:
                raise InvalidRequestError(
                    f"The refund {link.refund} is not a refund of a payment of invoice {invoice['id']}.",
                    param=f"{link.param}[refund]",
                )
            if refund["status"] in ("failed", "canceled"):
                raise InvalidRequestError(
                    f"The refund {link.refund} has a status of {refund['status']} and cannot be linked.",
                    param=f"{link.param}[refund]",
                )
            left = int(refund["amount"]) - taken.get(link.refund, 0)
            amount = link.amount_refunded if link.amount_refunded is not None else left
            if amount > left or left <= 0:
                raise InvalidRequestError(
                    f"The amount_refunded ({format_amount(amount, refund['currency'])}) is greater than what "
                    f"is left of refund {link.refund} to link to a credit note "
                    f"({format_amount(max(left, 0), refund['currency'])}).",
                    param=f"{link.param}[amount_refunded]",
                )
            taken[link.refund] = taken.get(link.refund, 0) + amount
            links.append(_refund_entry(link.refund, amount))
        return links

    def _refundable_intent(self, invoice: StripeObject, intents: list[str], amount: int) -> str:
        """The succeeded PaymentIntent of the invoice that ``refund_amount`` refunds, checked to cover it."""
        for pi_id in intents:
            pi = self.store.get("payment_intent", pi_id)
            if pi is None or pi["status"] != "succeeded" or not pi.get("latest_charge"):
                continue
            charge = self.store.get("charge", pi["latest_charge"])
            if charge is None:
                continue
            left = int(charge["amount_captured"]) - int(charge["amount_refunded"])
            if amount > left:
                raise InvalidRequestError(
                    f"Refund amount ({format_amount(amount, charge['currency'])}) is greater than unrefunded "
                    f"amount on charge ({format_amount(max(left, 0), charge['currency'])})",
                    code="amount_too_large",
                    param="refund_amount",
                )
            return pi_id
        raise InvalidRequestError(
            f"Invoice {invoice['id']} has no payment to refund: give the credit with credit_amount or "
            "out_of_band_amount instead.",
            param="refund_amount",
        )

    # -- effects on the invoice ----------------------------------------------------------------------------

    def _adjust_invoice(self, invoice: StripeObject, *, pre: int, post: int) -> None:
        """Apply (positive) or give back (negative) a credit note's amounts on its invoice: one
        ``invoice.updated``; an open invoice brought to zero is paid (its pending PaymentIntent canceled)."""
        before = clone(invoice)
        if pre:
            invoice["amount_due"] -= pre
            invoice["amount_remaining"] -= pre
            invoice["pre_payment_credit_notes_amount"] += pre
        if post:
            invoice["post_payment_credit_notes_amount"] += post
        settled = invoice["status"] == "open" and pre > 0 and invoice["amount_remaining"] == 0
        if not settled:
            self._sync_payment_intent(invoice)
        self.emit_update("invoice.updated", invoice, before)
        if settled:
            self._settle(invoice)

    def _sync_payment_intent(self, invoice: StripeObject) -> None:
        """An invoice's PaymentIntent not yet paid asks for what the invoice still has to be paid."""
        pi = self.store.get("payment_intent", invoice.get("_payment_intent") or "")
        if pi is None or pi["status"] not in OPEN_INTENT_STATUSES or invoice["status"] != "open":
            return
        pi["amount"] = invoice["amount_remaining"]
        for record in self.account.backend(InvoicesBackend).invoice_payment_list(
            invoice=invoice["id"], payment_intent=pi["id"]
        ):
            if record["status"] == "open":
                record["amount_requested"] = invoice["amount_remaining"]

    def _settle(self, invoice: StripeObject) -> None:
        """Credited down to zero: the invoice is paid, and what was still trying to collect it stops."""
        invoices = self.account.backend(InvoicesBackend)
        pi = self.store.get("payment_intent", invoice.get("_payment_intent") or "")
        if pi is not None and pi["status"] in OPEN_INTENT_STATUSES:
            payments_backend(self.account).payment_intent_cancel(pi["id"])
        now = self.now()
        for record in invoices.invoice_payments_of(invoice["id"]):
            if record["status"] == "open":
                record["status"] = "canceled"
                record["status_transitions"]["canceled_at"] = now
        invoices._mark_paid(invoice, None)

    # -- update, void --------------------------------------------------------------------------------------

    def credit_note_update(self, credit_note_id: str, changes: dict[str, Any]) -> StripeObject:
        note = self.credit_note_require(credit_note_id)
        before = clone(note)
        note.update(changes)
        self.emit_update("credit_note.updated", note, before)
        return note

    def credit_note_void(self, credit_note_id: str) -> StripeObject:
        note = self.credit_note_require(credit_note_id)
        if note["status"] == "void":
            raise InvalidRequestError(f"The credit note {credit_note_id} is already void.", param=None)
        if note["refunds"]:
            raise InvalidRequestError(
                f"The credit note {credit_note_id} refunded a payment: a credit note with refunds cannot be "
                "voided.",
                param=None,
            )
        invoice = self.account.backend(InvoicesBackend).invoice_require(note["invoice"], param=None)
        if note["pre_payment_amount"] and invoice["status"] != "open":
            raise InvalidRequestError(
                f"The credit note {credit_note_id} reduced the amount due of invoice {invoice['id']}, which is "
                f"now {invoice['status']}: it can only be voided while its invoice is open.",
                param=None,
            )
        note["status"] = "void"
        note["voided_at"] = self.now()
        self.emit("credit_note.voided", note)
        if note["customer_balance_transaction"]:
            txn = self.store.get("customer_balance_transaction", note["customer_balance_transaction"])
            customer = self.store.get("customer", note["customer"])
            if txn is not None and customer is not None and not customer.get("deleted"):
                self.account.backend(CustomerBalanceBackend).balance_apply(
                    note["customer"],
                    -int(txn["amount"]),
                    type="credit_note",
                    currency=note["currency"],
                    credit_note=note["id"],
                    param=None,
                )
        self._adjust_invoice(invoice, pre=-note["pre_payment_amount"], post=-note["post_payment_amount"])
        return note


def _sum_discounts(lines: list[StripeObject]) -> list[dict[str, Any]]:
    totals: dict[str, int] = {}
    for line in lines:
        for entry in line["discount_amounts"]:
            totals[entry["discount"]] = totals.get(entry["discount"], 0) + int(entry["amount"])
    return [{"amount": amount, "discount": discount} for discount, amount in totals.items()]


def _sumpretax(lines: list[StripeObject]) -> list[dict[str, Any]]:
    return [pretax(entry) for entry in _sum_discounts(lines)]


def _refund_entry(refund_id: str, amount: int) -> dict[str, Any]:
    """One entry of a credit note's ``refunds``."""
    return {"amount_refunded": amount, "payment_record_refund": None, "refund": refund_id, "type": "refund"}
