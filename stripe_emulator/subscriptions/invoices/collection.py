"""An invoice from finalization on: ``draft`` → ``open`` (number, hosted page, PDF, customer balance
applied), collection through its PaymentIntent (attempts, ``/pay``, paid or failed, Smart Retries), and
the other transitions (void, uncollectible, update, delete)."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.errors import CardError, InvalidRequestError
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.customers.balance import CustomerBalanceBackend
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.subscriptions.invoices.base import InvoicesBase, payments_backend
from stripe_emulator.subscriptions.periods import DAY
from stripe_emulator.subscriptions.settings import billing_settings, public_url
from stripe_emulator.tax import require_location


class InvoiceCollection(InvoicesBase):
    # -- finalization --------------------------------------------------------------------------------------

    def invoice_finalize(self, invoice_id: str, *, auto_advance: bool | None = None) -> StripeObject:
        invoice = self.invoice_require(invoice_id)
        if invoice["status"] != "draft":
            raise InvalidRequestError(
                "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
                code="invoice_not_editable",
                param=None,
            )
        customers = self.account.backend(CustomersBackend)
        customer = customers.customer_require(invoice["customer"], param=None)
        now = self.now()
        self._recompute(invoice)
        if invoice["automatic_tax"]["status"] == "requires_location_inputs":
            self._untaxable(invoice)
        starting = int(customer["balance"])
        due = max(0, invoice["total"] + starting)
        ending = invoice["total"] + starting - due
        if ending != starting:
            # One `applied_to_invoice` entry in the customer's balance ledger (and its customer.updated).
            self.account.backend(CustomerBalanceBackend).balance_apply(
                customer["id"],
                ending - starting,
                type="applied_to_invoice",
                currency=invoice["currency"],
                invoice=invoice_id,
                param=None,
            )
        sequence = int(customer["next_invoice_sequence"])
        customer["next_invoice_sequence"] = sequence + 1
        invoice.update(
            {
                "amount_due": due,
                "amount_remaining": due - invoice["amount_paid"],
                "starting_balance": starting,
                "ending_balance": ending,
                "status": "open",
                "number": f"{customer['invoice_prefix']}-{sequence:04d}",
                "effective_at": now,
                "hosted_invoice_url": public_url(self.account, f"/invoices/{invoice_id}"),
                "invoice_pdf": public_url(self.account, f"/invoices/{invoice_id}/pdf"),
            }
        )
        if auto_advance is not None:
            invoice["auto_advance"] = auto_advance
        invoice["status_transitions"]["finalized_at"] = now
        if invoice["collection_method"] == "send_invoice" and invoice["due_date"] is None:
            invoice["due_date"] = now + 30 * DAY
        self.emit("invoice.finalized", invoice)
        if due == 0:
            self._mark_paid(invoice, None)
        return invoice

    def _untaxable(self, invoice: StripeObject) -> None:
        """Finalizing an automatic-tax invoice without a tax location: a subscription's invoice is finalized
        without tax, automatic tax disabled on it (``finalization_requires_location_inputs``) and on the
        subscription (``requires_location_inputs``), as Stripe does; a manual invoice is refused (it stays a
        draft)."""
        subscription = self.store.get("subscription", invoice["_subscription"] or "")
        if subscription is None:
            require_location(None, param=None)
            return
        subscription["automatic_tax"].update(enabled=False, disabled_reason="requires_location_inputs")
        invoice["automatic_tax"].update(
            enabled=False, status=None, disabled_reason="finalization_requires_location_inputs"
        )

    # -- collection ----------------------------------------------------------------------------------------

    def default_payment_method(self, invoice: StripeObject) -> str | None:
        """Stripe's order: the invoice's, then its subscription's, then the customer's default."""
        if invoice["default_payment_method"]:
            return str(invoice["default_payment_method"])
        if invoice["_subscription"]:
            sub = self.store.get("subscription", invoice["_subscription"])
            if sub is not None and sub["default_payment_method"]:
                return str(sub["default_payment_method"])
        customer = self.store.get("customer", invoice["customer"])
        if customer is not None and not customer.get("deleted"):
            pm = customer["invoice_settings"].get("default_payment_method")
            if pm:
                return str(pm)
        return None

    def payment_intent_for(self, invoice: StripeObject, payment_method: str | None) -> StripeObject:
        """The invoice's PaymentIntent (created once, for ``amount_remaining``) and its ``invoice_payment``."""
        payments = payments_backend(self.account)
        if invoice["_payment_intent"] is not None:
            pi = self.store.get("payment_intent", invoice["_payment_intent"])
            if pi is not None and pi["status"] not in ("succeeded", "canceled"):
                return pi
        pi = payments.payment_intent_create(
            amount=invoice["amount_remaining"],
            currency=invoice["currency"],
            customer=invoice["customer"],
            payment_method=payment_method,
            description=f"Invoice {invoice['number']}" if invoice["number"] else None,
            metadata={},
            setup_future_usage="off_session",
            invoice=invoice["id"],
        )
        invoice["_payment_intent"] = pi["id"]
        for old in self.invoice_payments_of(invoice["id"]):
            old["is_default"] = False
        record: StripeObject = {
            "id": ids.new_id("inpay"),
            "object": "invoice_payment",
            "amount_paid": None,
            "amount_requested": invoice["amount_remaining"],
            "created": self.now(),
            "currency": invoice["currency"],
            "invoice": invoice["id"],
            "is_default": True,
            "livemode": False,
            "payment": {"payment_intent": pi["id"], "type": "payment_intent"},
            "status": "open",
            "status_transitions": {"canceled_at": None, "paid_at": None},
        }
        self.store.insert(record)
        return pi

    def invoice_attempt(
        self, invoice_id: str, *, payment_method: str | None = None, off_session: bool = True
    ) -> str:
        """One collection attempt on an open invoice: ``"paid"``, ``"failed"`` or ``"requires_action"``.
        Never raises for a decline; failures update ``attempt_count``/``next_payment_attempt`` and emit
        ``invoice.payment_failed`` (and ``invoice.payment_action_required``)."""
        invoice = self.invoice_require(invoice_id)
        if invoice["status"] == "paid":
            return "paid"
        if invoice["status"] not in ("open", "uncollectible"):
            raise InvalidRequestError(
                f"You cannot pay an invoice with status {invoice['status']}.", param=None
            )
        if invoice["amount_remaining"] == 0:
            self._mark_paid(invoice, None)
            return "paid"
        pm = payment_method or self.default_payment_method(invoice)
        if pm is None:
            self._payment_failed(invoice, None, action_required=False)
            return "failed"
        payments = payments_backend(self.account)
        pi = self.payment_intent_for(invoice, pm)
        pi = payments.payment_intent_confirm_internal(pi["id"], payment_method=pm, off_session=off_session)
        if invoice["status"] == "paid" or pi["status"] == "succeeded":
            self._mark_paid(invoice, pi)  # usually already done by the status listener
            return "paid"
        action = pi["status"] == "requires_action"
        self._payment_failed(invoice, pi, action_required=action)
        return "requires_action" if action else "failed"

    def invoice_pay(
        self, invoice_id: str, *, payment_method: str | None = None, paid_out_of_band: bool = False
    ) -> StripeObject:
        """``POST /v1/invoices/{id}/pay``: finalizes a draft, attempts on-session; a decline is a 402."""
        invoice = self.invoice_require(invoice_id)
        if invoice["status"] == "paid":
            raise InvalidRequestError("Invoice is already paid", code="invoice_already_paid", param=None)
        if invoice["status"] == "void":
            raise InvalidRequestError(
                "You cannot pay a void invoice.", code="invoice_not_editable", param=None
            )
        if invoice["status"] == "draft":
            self.invoice_finalize(invoice_id)
            if invoice["status"] == "paid":
                return invoice
        if paid_out_of_band:
            self._mark_paid(invoice, None, out_of_band=True)
            return invoice
        if payment_method is None and self.default_payment_method(invoice) is None:
            raise InvalidRequestError(
                "This customer has no attached payment source or default payment method. Please consider "
                "adding a default payment method.",
                param="payment_method",
            )
        outcome = self.invoice_attempt(invoice_id, payment_method=payment_method, off_session=False)
        if outcome != "paid":
            pi = self.store.get("payment_intent", invoice["_payment_intent"] or "")
            raise payment_error(pi, outcome)
        return invoice

    def _mark_paid(
        self, invoice: StripeObject, pi: StripeObject | None, *, out_of_band: bool = False
    ) -> None:
        if invoice["status"] == "paid":
            return
        now = self.now()
        paid = invoice["amount_remaining"] if not out_of_band else 0
        invoice["amount_paid"] += paid
        invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]
        if out_of_band:
            invoice["amount_remaining"] = 0
        invoice["status"] = "paid"
        invoice["attempted"] = invoice["attempted"] or pi is not None
        invoice["next_payment_attempt"] = None
        invoice["auto_advance"] = False
        invoice["status_transitions"]["paid_at"] = now
        if pi is not None:
            for record in self.invoice_payment_list(invoice=invoice["id"], payment_intent=pi["id"]):
                if record["status"] == "open":
                    record["status"] = "paid"
                    record["amount_paid"] = record["amount_requested"]
                    record["status_transitions"]["paid_at"] = now
                    self.emit("invoice_payment.paid", record)
        self.emit("invoice.paid", invoice)
        self.emit("invoice.payment_succeeded", invoice)
        if invoice["_subscription"]:
            from stripe_emulator.subscriptions.models import SubscriptionsBackend

            self.account.backend(SubscriptionsBackend).on_invoice_paid(invoice)

    def _payment_failed(
        self, invoice: StripeObject, pi: StripeObject | None, *, action_required: bool
    ) -> None:
        now = self.now()
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        if invoice["_first_failed_at"] is None:
            invoice["_first_failed_at"] = invoice.get("_attempt_at") or now
        final = True
        invoice["next_payment_attempt"] = None
        if invoice["auto_advance"] and retries_apply(invoice):
            schedule = billing_settings(self.account)["retry_days"]
            retries_done = invoice["attempt_count"] - 1
            if retries_done < len(schedule):
                invoice["next_payment_attempt"] = invoice["_first_failed_at"] + int(
                    schedule[retries_done] * DAY
                )
                final = False
        self.emit("invoice.payment_failed", invoice)
        if action_required:
            self.emit("invoice.payment_action_required", invoice)
        if invoice["_subscription"]:
            from stripe_emulator.subscriptions.models import SubscriptionsBackend

            self.account.backend(SubscriptionsBackend).on_invoice_payment_failed(invoice, final=final)

    # -- other transitions ---------------------------------------------------------------------------------

    def invoice_void(self, invoice_id: str) -> StripeObject:
        invoice = self.invoice_require(invoice_id)
        if invoice["status"] not in ("open", "uncollectible"):
            raise InvalidRequestError(
                f"You can only void an open or uncollectible invoice; this one is {invoice['status']}.",
                code="invoice_not_editable",
                param=None,
            )
        now = self.now()
        invoice["status"] = "void"
        invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]
        invoice["next_payment_attempt"] = None
        invoice["auto_advance"] = False
        invoice["status_transitions"]["voided_at"] = now
        for record in self.invoice_payments_of(invoice_id):
            if record["status"] == "open":
                record["status"] = "canceled"
                record["status_transitions"]["canceled_at"] = now
        self.emit("invoice.voided", invoice)
        applied = (invoice["ending_balance"] or 0) - (invoice["starting_balance"] or 0)
        customer = self.store.get("customer", invoice["customer"])
        if invoice["ending_balance"] is not None and applied and customer and not customer.get("deleted"):
            # The balance the invoice took at finalization goes back to the customer, as Stripe returns it at
            # this API version: one `unapplied_from_invoice` entry.
            self.account.backend(CustomerBalanceBackend).balance_apply(
                invoice["customer"],
                -applied,
                type="unapplied_from_invoice",
                currency=invoice["currency"],
                invoice=invoice_id,
                param=None,
            )
        return invoice

    def invoice_mark_uncollectible(self, invoice_id: str) -> StripeObject:
        invoice = self.invoice_require(invoice_id)
        if invoice["status"] not in ("open", "uncollectible"):
            raise InvalidRequestError(
                f"You can only mark an open invoice as uncollectible; this one is {invoice['status']}.",
                code="invoice_not_editable",
                param=None,
            )
        invoice["status"] = "uncollectible"
        invoice["next_payment_attempt"] = None
        invoice["auto_advance"] = False
        invoice["status_transitions"]["marked_uncollectible_at"] = self.now()
        self.emit("invoice.marked_uncollectible", invoice)
        return invoice

    def invoice_update(self, invoice_id: str, changes: dict[str, Any]) -> StripeObject:
        invoice = self.invoice_require(invoice_id)
        before = clone(invoice)
        invoice.update(changes)
        self.emit_update("invoice.updated", invoice, before)
        return invoice

    def invoice_delete(self, invoice_id: str) -> StripeObject:
        invoice = self.invoice_require(invoice_id)
        if invoice["status"] != "draft":
            raise InvalidRequestError(
                "You can only delete draft invoices.", code="invoice_not_editable", param=None
            )
        self.emit("invoice.deleted", invoice)
        for line in self.invoice_lines(invoice_id):
            self.store.remove(line["id"])
        for item in self.store.iter_type("invoiceitem"):
            if item.get("invoice") == invoice_id:  # a deleted item's tombstone holds none
                item["invoice"] = None
        tombstone = {"id": invoice_id, "object": "invoice", "deleted": True}
        self.store.replace(tombstone)
        return tombstone

    # -- time ----------------------------------------------------------------------------------------------

    def due_retries(self, now: int) -> list[tuple[int, StripeObject]]:
        return [
            (int(i["next_payment_attempt"]), i)
            for i in self.store.iter_type("invoice")
            if i.get("status") == "open"
            and i.get("next_payment_attempt") is not None
            and i["next_payment_attempt"] <= now
            and self.account.on_current_clock(i["customer"])
        ]

    def retry(self, invoice: StripeObject, at: int) -> None:
        invoice["_attempt_at"] = at
        self.invoice_attempt(invoice["id"])


def retries_apply(invoice: StripeObject) -> bool:
    """Smart Retries collect renewal and update invoices; a subscription's first invoice is never retried
    (the subscription is ``incomplete`` until the customer pays it on-session)."""
    return (
        invoice["collection_method"] == "charge_automatically"
        and invoice["billing_reason"] != "subscription_create"
    )


def payment_error(pi: StripeObject | None, outcome: str) -> CardError:
    """The 402 Stripe answers when an invoice payment fails on a request (``/pay``, ``error_if_incomplete``)."""
    error = (pi or {}).get("last_payment_error") or {}
    if outcome == "requires_action":
        return CardError(
            "This payment requires additional user action before it can be completed successfully.",
            code="invoice_payment_intent_requires_action",
            decline_code=None,
            param=None,
        )
    if pi is None:
        return CardError(
            "This customer has no attached payment source or default payment method.",
            code="invoice_payment_intent_requires_action",
            decline_code=None,
        )
    return CardError(
        error.get("message") or "Your card was declined.",
        code=error.get("code") or "card_declined",
        decline_code=error.get("decline_code"),
    )
