"""Drafting invoices: a new draft invoice with its line items, and pending invoice items (prorations among
them) that the next invoice of their subscription pulls in."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.subscriptions.invoices.base import InvoicesBase, price_details
from stripe_emulator.subscriptions.periods import DAY
from stripe_emulator.tax import automatic_tax_field


class InvoiceDrafts(InvoicesBase):
    # -- invoices and lines --------------------------------------------------------------------------------

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
        automatic_tax: bool | None = None,
        discounts: list[str] | None = None,
    ) -> StripeObject:
        """A draft invoice with ``lines`` (specs for :meth:`_add_line`) and the given pending invoice items
        pulled onto it; emits ``invoice.created``. ``automatic_tax`` defaults to the subscription's;
        ``discounts`` (discount ids) to the subscription's discounts that still apply."""
        from stripe_emulator.coupons.invoicing import subscription_discounts_for  # the coupons service

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
            "automatic_tax": automatic_tax_field(
                enabled=bool(
                    automatic_tax
                    if automatic_tax is not None
                    else subscription is not None and subscription["automatic_tax"]["enabled"]
                ),
                status="complete",
                invoice=True,
            ),
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
            "subtotal": 0,
            "subtotal_excluding_tax": 0,
            # Invoices (and invoice items) live on their customer's test clock, as Stripe shows.
            "test_clock": customer.get("test_clock"),
            "total": 0,
            "total_discount_amounts": [],
            "total_excluding_tax": 0,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": None,
            "_first_failed_at": None,
            "_payment_intent": None,
            # Stripe dropped the top-level `subscription` at this version (it is
            # `parent.subscription_details.subscription`); kept privately for lookups.
            "_subscription": subscription["id"] if subscription else None,
        }
        if discounts is None and subscription is not None:
            discounts = subscription_discounts_for(self.account, subscription, invoice_id, now)
        invoice["discounts"] = list(discounts or [])
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
        price: StripeObject | None,
        quantity: int,
        period_start: int,
        period_end: int,
        subscription_item: str | None = None,
        invoice_item: str | None = None,
        proration: bool = False,
        pricing: dict[str, Any] | None = None,
        discountable: bool | None = None,
    ) -> StripeObject:
        """``pricing`` defaults to ``price``'s; a line without a price (an invoice item of an ``amount``) takes
        its item's."""
        if subscription_item is not None or (
            invoice["_subscription"] is not None and invoice_item is not None
        ):
            parent: dict[str, Any] = {
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": invoice_item,
                    "proration": proration,
                    "proration_details": {"credited_items": None},
                    "subscription": invoice["_subscription"],
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
                    "subscription": invoice["_subscription"],
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
            "discountable": (not proration) if discountable is None else discountable,
            "discounts": [],
            "invoice": invoice["id"],
            "livemode": False,
            "metadata": {},
            "parent": parent,
            "period": {"end": period_end, "start": period_start},
            "pretax_credit_amounts": [],
            "pricing": clone(pricing) if pricing is not None else price_details(_required(price)),
            "quantity": quantity,
            "quantity_decimal": str(quantity),
            "subscription": invoice["_subscription"],
            "subtotal": amount,
            "taxes": [],
        }
        self.store.insert(line)
        invoice["lines"]["data"].append(clone(line))
        return line

    def _add_invoice_item_line(self, invoice: StripeObject, item: StripeObject) -> StripeObject:
        item["invoice"] = invoice["id"]
        return self._add_line(
            invoice,
            amount=item["amount"],
            description=item["description"] or "",
            price=None,
            pricing=item["pricing"],
            discountable=item["discountable"],
            quantity=item["quantity"],
            period_start=item["period"]["start"],
            period_end=item["period"]["end"],
            subscription_item=item["_subscription_item"],
            invoice_item=item["id"],
            proration=item["proration"],
        )

    # -- pending invoice items -----------------------------------------------------------------------------

    def invoiceitem_create(
        self,
        *,
        customer_id: str,
        subscription: StripeObject | None,
        subscription_item: str | None,
        price: StripeObject | None,
        amount: int,
        quantity: int,
        description: str | None,
        period_start: int,
        period_end: int,
        proration: bool,
        currency: str | None = None,
        discountable: bool | None = None,
        metadata: dict[str, str] | None = None,
    ) -> StripeObject:
        """A pending invoice item (``invoice: null`` until an invoice pulls it in); prorations are these.
        Without a ``price`` (an item of an ``amount``) the ``currency`` is needed and ``pricing`` names no
        price."""
        pricing = (
            price_details(price)
            if price is not None
            else {"price_details": None, "type": "price_details", "unit_amount_decimal": str(amount)}
        )
        item: StripeObject = {
            "id": ids.id_for("invoiceitem"),
            "object": "invoiceitem",
            "amount": amount,
            "currency": price["currency"] if price is not None else currency,
            "customer": customer_id,
            "customer_account": None,
            "date": self.now(),
            "description": description,
            "discountable": (not proration and amount >= 0) if discountable is None else discountable,
            "discounts": [],
            "invoice": None,
            "livemode": False,
            "metadata": metadata or {},
            "net_amount": amount,
            "parent": (
                {"subscription_details": {"subscription": subscription["id"]}, "type": "subscription_details"}
                if subscription is not None
                else None
            ),
            "period": {"end": period_end, "start": period_start},
            "pricing": pricing,
            "proration": proration,
            "quantity": quantity,
            "quantity_decimal": str(quantity),
            "tax_rates": [],
            "test_clock": self.account.test_clock_of(customer_id),
            "_subscription": subscription["id"] if subscription is not None else None,
            "_subscription_item": subscription_item,
        }
        self.store.insert(item)
        self.emit("invoiceitem.created", item)
        return item

    def pending_items(self, subscription_id: str) -> list[StripeObject]:
        """What the subscription's next invoice pulls in: its own pending items, and its customer's pending
        items in its currency that name no subscription (as Stripe adds those to the next scheduled invoice)."""
        sub = self.store.require("subscription", subscription_id, param=None)
        return [
            i
            for i in self.store.iter_type("invoiceitem")
            if not i.get("deleted")  # a deleted item's tombstone holds no `invoice`
            and i["invoice"] is None
            and (
                i.get("_subscription") == subscription_id
                or (
                    i.get("_subscription") is None
                    and i["customer"] == sub["customer"]
                    and i["currency"] == sub["currency"]
                )
            )
        ]


def _required(price: StripeObject | None) -> StripeObject:
    if price is None:
        raise ValueError("a line needs a price, or its invoice item's pricing")
    return price
