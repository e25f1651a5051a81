"""Invoices, invoice line items, pending invoice items and invoice payments: the money side of subscriptions.

Lifecycle: ``draft`` → ``open`` (finalized: ``number``, hosted page, PDF) → ``paid`` | ``void`` |
``uncollectible``. Collection (``charge_automatically``) goes through the payments service: each invoice owns
one PaymentIntent (created at the first attempt, reused by retries) recorded as an ``invoice_payment``. A
PaymentIntent that succeeds later (3-D Secure completed, a retry, ``POST /v1/invoices/{id}/pay``) pays the
invoice through :func:`on_payment_intent_status`, which the payments service calls on every status change.

Amounts: ``subtotal`` = ``total`` = sum of the lines; at finalization the customer's balance is applied
(``starting_balance``/``ending_balance``), so ``amount_due`` = max(0, ``total`` + balance);
``amount_remaining`` = ``amount_due`` − ``amount_paid``. A negative total becomes customer credit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stripe_emulator.core import ids
from stripe_emulator.core.account import Account, BaseBackend
from stripe_emulator.core.errors import CardError, InvalidRequestError
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.subscriptions.periods import DAY
from stripe_emulator.subscriptions.settings import billing_settings, public_url

if TYPE_CHECKING:
    from stripe_emulator.payments.models import PaymentsBackend

ADDRESS_KEYS = ("city", "country", "line1", "line2", "postal_code", "state")
STATUSES = ("draft", "open", "paid", "uncollectible", "void")


def payments_backend(account: Account) -> PaymentsBackend:
    from stripe_emulator.payments.models import PaymentsBackend  # the payments service (another phase)

    return account.backend(PaymentsBackend)


def price_details(price: StripeObject) -> dict[str, Any]:
    return {
        "price_details": {"price": price["id"], "product": price["product"]},
        "type": "price_details",
        "unit_amount_decimal": price["unit_amount_decimal"],
    }


class InvoicesBackend(BaseBackend):
    # -- creation ------------------------------------------------------------------------------------------

    def invoice_create(
        self,
        *,
        customer_id: str,
        currency: str,
        billing_reason: str = "manual",
        subscription: StripeObject | None = None,
        lines: list[dict[str, Any]] | None = None,
        pending_items: list[StripeObject] | None = None,
        period_start: int | None = None,
        period_end: int | None = None,
        created: int | None = None,
        collection_method: str = "charge_automatically",
        days_until_due: int | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        default_payment_method: str | None = None,
        auto_advance: bool | None = None,
    ) -> StripeObject:
        """A draft invoice with ``lines`` (specs for :meth:`_add_line`) and the given pending invoice items
        pulled onto it; emits ``invoice.created``."""
        customer = self.account.backend(CustomersBackend).customer_require(customer_id, param="customer")
        now = created if created is not None else self.now()
        invoice_id = ids.id_for("invoice")
        invoice: StripeObject = {
            "id": invoice_id,
            "object": "invoice",
            "account_country": "US",
            "account_name": "Tollgate (Stripe emulator)",
            "account_tax_ids": None,
            "amount_due": 0,
            "amount_overpaid": 0,
            "amount_paid": 0,
            "amount_remaining": 0,
            "amount_shipping": 0,
            "application": None,
            "attempt_count": 0,
            "attempted": False,
            "auto_advance": (collection_method == "charge_automatically")
            if auto_advance is None
            else auto_advance,
            "automatic_tax": {
                "disabled_reason": None,
                "enabled": False,
                "liability": None,
                "provider": None,
                "status": None,
            },
            "automatically_finalizes_at": None,
            "billing_reason": billing_reason,
            "collection_method": collection_method,
            "created": now,
            "currency": currency,
            "custom_fields": customer["invoice_settings"].get("custom_fields"),
            "customer": customer_id,
            "customer_account": None,
            "customer_address": customer["address"],
            "customer_email": customer["email"],
            "customer_name": customer["name"],
            "customer_phone": customer["phone"],
            "customer_shipping": customer["shipping"],
            "customer_tax_exempt": customer["tax_exempt"],
            "customer_tax_ids": [],
            "default_payment_method": default_payment_method,
            "default_source": None,
            "default_tax_rates": [],
            "description": description,
            "discounts": [],
            "due_date": now + days_until_due * DAY
            if collection_method == "send_invoice" and days_until_due
            else None,
            "effective_at": None,
            "ending_balance": None,
            "footer": customer["invoice_settings"].get("footer"),
            "from_invoice": None,
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "issuer": {"type": "self"},
            "last_finalization_error": None,
            "latest_revision": None,
            "lines": {
                "object": "list",
                "data": [],
                "has_more": False,
                "url": f"/v1/invoices/{invoice_id}/lines",
            },
            "livemode": False,
            "metadata": metadata or {},
            "next_payment_attempt": None,
            "number": None,
            "on_behalf_of": None,
            "parent": None,
            "payment_settings": {
                "default_mandate": None,
                "payment_method_options": None,
                "payment_method_types": None,
            },
            "period_end": period_end if period_end is not None else now,
            "period_start": period_start if period_start is not None else now,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": None,
            "rendering": None,
            "shipping_cost": None,
            "shipping_details": None,
            "starting_balance": 0,
            "statement_descriptor": None,
            "status": "draft",
            "status_transitions": {
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subscription": subscription["id"] if subscription else None,
            "subtotal": 0,
            "subtotal_excluding_tax": 0,
            "test_clock": None,
            "total": 0,
            "total_discount_amounts": [],
            "total_excluding_tax": 0,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": None,
            "_first_failed_at": None,
            "_payment_intent": None,
        }
        if subscription is not None:
            invoice["parent"] = {
                "quote_details": None,
                "subscription_details": {
                    "metadata": dict(subscription["metadata"]),
                    "subscription": subscription["id"],
                },
                "type": "subscription_details",
            }
        self.store.insert(invoice)
        for item in pending_items or []:
            self._add_invoice_item_line(invoice, item)
        for spec in lines or []:
            self._add_line(invoice, **spec)
        self._recompute(invoice)
        self.emit("invoice.created", invoice)
        return invoice

    def _add_line(
        self,
        invoice: StripeObject,
        *,
        amount: int,
        description: str,
        price: StripeObject,
        quantity: int,
        period_start: int,
        period_end: int,
        subscription_item: str | None = None,
        invoice_item: str | None = None,
        proration: bool = False,
    ) -> StripeObject:
        if subscription_item is not None or (
            invoice["subscription"] is not None and invoice_item is not None
        ):
            parent: dict[str, Any] = {
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": invoice_item,
                    "proration": proration,
                    "proration_details": {"credited_items": None},
                    "subscription": invoice["subscription"],
                    "subscription_item": subscription_item,
                },
                "type": "subscription_item_details",
            }
        else:
            parent = {
                "invoice_item_details": {
                    "invoice_item": invoice_item,
                    "proration": proration,
                    "proration_details": {"credited_items": None},
                    "subscription": invoice["subscription"],
                },
                "subscription_item_details": None,
                "type": "invoice_item_details",
            }
        line: StripeObject = {
            "id": ids.new_id("il"),
            "object": "line_item",
            "amount": amount,
            "currency": invoice["currency"],
            "description": description,
            "discount_amounts": [],
            "discountable": not proration,
            "discounts": [],
            "invoice": invoice["id"],
            "livemode": False,
            "metadata": {},
            "parent": parent,
            "period": {"end": period_end, "start": period_start},
            "pretax_credit_amounts": [],
            "pricing": price_details(price),
            "quantity": quantity,
            "quantity_decimal": str(quantity),
            "subscription": invoice["subscription"],
            "subtotal": amount,
            "taxes": [],
        }
        self.store.insert(line)
        invoice["lines"]["data"].append(clone(line))
        return line

    def _add_invoice_item_line(self, invoice: StripeObject, item: StripeObject) -> StripeObject:
        item["invoice"] = invoice["id"]
        price = self.store.require("price", item["pricing"]["price_details"]["price"], param=None)
        return self._add_line(
            invoice,
            amount=item["amount"],
            description=item["description"] or "",
            price=price,
            quantity=item["quantity"],
            period_start=item["period"]["start"],
            period_end=item["period"]["end"],
            subscription_item=item["_subscription_item"],
            invoice_item=item["id"],
            proration=item["proration"],
        )

    def invoiceitem_create(
        self,
        *,
        customer_id: str,
        subscription: StripeObject | None,
        subscription_item: str | None,
        price: StripeObject,
        amount: int,
        quantity: int,
        description: str,
        period_start: int,
        period_end: int,
        proration: bool,
    ) -> StripeObject:
        """A pending invoice item (``invoice: null`` until an invoice pulls it in); prorations are these."""
        item: StripeObject = {
            "id": ids.id_for("invoiceitem"),
            "object": "invoiceitem",
            "amount": amount,
            "currency": price["currency"],
            "customer": customer_id,
            "customer_account": None,
            "date": self.now(),
            "description": description,
            "discountable": not proration,
            "discounts": [],
            "invoice": None,
            "livemode": False,
            "metadata": {},
            "net_amount": amount,
            "parent": (
                {"subscription_details": {"subscription": subscription["id"]}, "type": "subscription_details"}
                if subscription is not None
                else None
            ),
            "period": {"end": period_end, "start": period_start},
            "pricing": price_details(price),
            "proration": proration,
            "quantity": quantity,
            "quantity_decimal": str(quantity),
            "tax_rates": [],
            "test_clock": None,
            "_subscription": subscription["id"] if subscription is not None else None,
            "_subscription_item": subscription_item,
        }
        self.store.insert(item)
        self.emit("invoiceitem.created", item)
        return item

    def pending_items(self, subscription_id: str) -> list[StripeObject]:
        return [
            i
            for i in self.store.iter_type("invoiceitem")
            if i["invoice"] is None and i.get("_subscription") == subscription_id and not i.get("deleted")
        ]

    def _recompute(self, invoice: StripeObject) -> None:
        total = sum(line["amount"] for line in invoice["lines"]["data"])
        invoice["subtotal"] = invoice["subtotal_excluding_tax"] = total
        invoice["total"] = invoice["total_excluding_tax"] = total
        if invoice["status"] == "draft":
            invoice["amount_due"] = max(0, total)
            invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]

    # -- reads ---------------------------------------------------------------------------------------------

    def invoice_require(self, invoice_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("invoice", invoice_id, param=param)

    def invoice_list(
        self,
        *,
        customer: str | None = None,
        subscription: str | None = None,
        status: str | None = None,
        collection_method: str | None = None,
    ) -> list[StripeObject]:
        return self.store.newest_first(
            "invoice",
            lambda i: (
                (customer is None or i["customer"] == customer)
                and (subscription is None or i["subscription"] == subscription)
                and (status is None or i["status"] == status)
                and (collection_method is None or i["collection_method"] == collection_method)
            ),
        )

    def invoice_lines(self, invoice_id: str) -> list[StripeObject]:
        self.invoice_require(invoice_id)
        lines = [line for line in self.store.iter_type("line_item") if line["invoice"] == invoice_id]
        lines.reverse()
        return lines

    def invoice_payments_of(self, invoice_id: str) -> list[StripeObject]:
        return self.store.newest_first("invoice_payment", lambda p: p["invoice"] == invoice_id)

    def invoice_payment_list(
        self, *, invoice: str | None = None, payment_intent: str | None = None, status: str | None = None
    ) -> list[StripeObject]:
        return self.store.newest_first(
            "invoice_payment",
            lambda p: (
                (invoice is None or p["invoice"] == invoice)
                and (payment_intent is None or p["payment"].get("payment_intent") == payment_intent)
                and (status is None or p["status"] == status)
            ),
        )

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
        starting = int(customer["balance"])
        due = max(0, invoice["total"] + starting)
        ending = invoice["total"] + starting - due
        if ending != starting:
            customers.customer_update(customer["id"], {"balance": ending})
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

    # -- collection ----------------------------------------------------------------------------------------

    def default_payment_method(self, invoice: StripeObject) -> str | None:
        """Stripe's order: the invoice's, then its subscription's, then the customer's default."""
        if invoice["default_payment_method"]:
            return str(invoice["default_payment_method"])
        if invoice["subscription"]:
            sub = self.store.get("subscription", invoice["subscription"])
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
        if invoice["subscription"]:
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
        if invoice["subscription"]:
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
            if item["invoice"] == invoice_id:
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
