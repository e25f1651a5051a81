"""Invoice items of the API (``/v1/invoiceitems``): create for a customer (an ``amount``, or a one-time price
times a quantity), onto one of its draft invoices or pending until the customer's next invoice pulls it in;
update and delete while pending or on a draft (the draft's line follows, and the draft announces its change:
``invoice.updated``); list."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.params import in_range
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.products.models import ProductsBackend
from stripe_emulator.subscriptions.invoices.base import price_details
from stripe_emulator.subscriptions.invoices.drafts import InvoiceDrafts


class InvoiceItems(InvoiceDrafts):
    def invoiceitem_require(self, item_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("invoiceitem", item_id, param=param)

    def invoiceitem_add(
        self,
        *,
        customer_id: str,
        price_id: str | None,
        amount: int | None,
        quantity: int | None,
        currency: str | None,
        description: str | None,
        invoice_id: str | None,
        subscription_id: str | None,
        period: tuple[int, int] | None,
        discountable: bool | None,
        metadata: dict[str, str],
    ) -> StripeObject:
        """``POST /v1/invoiceitems``: validated before anything is stored; ``invoiceitem.created``."""
        customer = self.account.backend(CustomersBackend).customer_require(customer_id, param="customer")
        price = self._one_time_price(price_id, param="pricing[price]") if price_id is not None else None
        currency = self._item_currency(price, currency, customer)
        subscription = self._customer_subscription(subscription_id, customer_id)
        invoice = self._draft_for(invoice_id, customer_id, currency) if invoice_id is not None else None
        units = quantity if quantity is not None else 1
        total = self.account.backend(ProductsBackend).price_amount(price, units) if price else amount or 0
        start, end = period if period is not None else (self.now(), self.now())
        item = self.invoiceitem_create(
            customer_id=customer_id,
            subscription=subscription,
            subscription_item=None,
            price=price,
            amount=total,
            quantity=units,
            description=description,
            period_start=start,
            period_end=end,
            proration=False,
            currency=currency,
            discountable=discountable,
            metadata=metadata,
        )
        if invoice is not None:
            before = clone(invoice)
            self._add_invoice_item_line(invoice, item)
            self._recompute(invoice)
            self.emit_update("invoice.updated", invoice, before)
        return item

    def invoiceitem_update(self, item_id: str, changes: dict[str, Any]) -> StripeObject:
        """``changes``: ``amount``, ``price`` (an id), ``quantity``, ``description``, ``period``,
        ``discountable``, ``metadata`` (merged). No ``invoiceitem.*`` event: Stripe sends none for invoice item
        updates; an item on a draft changes the draft's line in place (its id and place kept) and the draft
        says so (``invoice.updated``, as every change of a draft's lines)."""
        item = self.invoiceitem_require(item_id)
        invoice = self._editable_invoice_of(item)
        price = None
        if changes.get("price") is not None:
            price = self._one_time_price(changes["price"], param="pricing[price]")
            if price["currency"] != item["currency"]:
                raise InvalidRequestError(
                    "The price's currency must match the invoice item's currency.", param="pricing[price]"
                )
        elif item["pricing"]["price_details"] is not None and "amount" not in changes:
            price = self.store.require("price", item["pricing"]["price_details"]["price"], param=None)
        if "amount" in changes and price is None:
            item.update(
                amount=changes["amount"], net_amount=changes["amount"], quantity=1, quantity_decimal="1"
            )
            item["pricing"] = {
                "price_details": None,
                "type": "price_details",
                "unit_amount_decimal": str(changes["amount"]),
            }
        if price is not None:
            units: int = changes["quantity"] if "quantity" in changes else item["quantity"]
            total = self.account.backend(ProductsBackend).price_amount(price, units)
            item.update(amount=total, net_amount=total, quantity=units, quantity_decimal=str(units))
            item["pricing"] = price_details(price)
        for key in ("description", "discountable", "metadata"):
            if key in changes:
                item[key] = changes[key]
        if "period" in changes:
            item["period"] = {"start": changes["period"][0], "end": changes["period"][1]}
        if invoice is not None:
            before = clone(invoice)
            self._replace_line(invoice, item)
            self.emit_update("invoice.updated", invoice, before)
        return item

    def invoiceitem_delete(self, item_id: str) -> StripeObject:
        item = self.invoiceitem_require(item_id)
        invoice = self._editable_invoice_of(item)
        if invoice is not None:
            before = clone(invoice)
            self._remove_line(invoice, item)
            self._recompute(invoice)
            self.emit_update("invoice.updated", invoice, before)
        self.emit("invoiceitem.deleted", item)
        tombstone = {"id": item_id, "object": "invoiceitem", "deleted": True}
        self.store.replace(tombstone)
        return tombstone

    def invoiceitem_list(
        self,
        *,
        customer: str | None = None,
        invoice: str | None = None,
        pending: bool | None = None,
        created: dict[str, int] | None = None,
    ) -> list[StripeObject]:
        return self.store.newest_first(
            "invoiceitem",
            lambda i: (
                (customer is None or i["customer"] == customer)
                and (invoice is None or i["invoice"] == invoice)
                and (pending is None or (i["invoice"] is None) == pending)
                and in_range(i["date"], created)
            ),
        )

    # -- checks and lines ----------------------------------------------------------------------------------

    def _one_time_price(self, price_id: str, *, param: str) -> StripeObject:
        price = self.account.backend(ProductsBackend).price_require(price_id, param=param)
        if price["type"] != "one_time":
            raise InvalidRequestError(
                f"The price specified is set to `type=recurring` but this field only accepts prices with "
                f"`type=one_time`: {price_id}.",
                param=param,
            )
        return price

    @staticmethod
    def _item_currency(price: StripeObject | None, currency: str | None, customer: StripeObject) -> str:
        if price is not None and currency is not None and currency != price["currency"]:
            raise InvalidRequestError(
                f"The currency {currency} does not match the price's currency {price['currency']}.",
                param="currency",
            )
        if price is not None:
            return str(price["currency"])
        return currency or customer.get("currency") or "usd"

    def _customer_subscription(self, subscription_id: str | None, customer_id: str) -> StripeObject | None:
        if subscription_id is None:
            return None
        subscription = self.store.require("subscription", subscription_id, param="subscription")
        if subscription["customer"] != customer_id:
            raise InvalidRequestError(
                f"The subscription {subscription_id} does not belong to customer {customer_id}.",
                param="subscription",
            )
        return subscription

    def _draft_for(self, invoice_id: str, customer_id: str, currency: str) -> StripeObject:
        invoice = self.invoice_require(invoice_id, param="invoice")
        if invoice["status"] != "draft":
            raise InvalidRequestError(
                f"You can only add invoice items to draft invoices; {invoice_id} is {invoice['status']}.",
                code="invoice_not_editable",
                param="invoice",
            )
        if invoice["customer"] != customer_id:
            raise InvalidRequestError(
                f"The invoice {invoice_id} belongs to another customer than {customer_id}.", param="invoice"
            )
        if invoice["currency"] != currency:
            raise InvalidRequestError(
                f"The invoice item's currency ({currency}) must match the invoice's ({invoice['currency']}).",
                param="currency",
            )
        return invoice

    def _editable_invoice_of(self, item: StripeObject) -> StripeObject | None:
        """The draft invoice holding ``item`` (``None`` while it is pending); refused once it is finalized."""
        if item["invoice"] is None:
            return None
        invoice = self.invoice_require(item["invoice"], param=None)
        if invoice["status"] != "draft":
            raise InvalidRequestError(
                f"The invoice item {item['id']} is on invoice {invoice['id']}, which is no longer a draft.",
                code="invoice_not_editable",
            )
        return invoice

    def _remove_line(self, invoice: StripeObject, item: StripeObject) -> None:
        for line in self.invoice_lines(invoice["id"]):
            if _invoice_item_of(line) == item["id"]:
                self.store.remove(line["id"])
                invoice["lines"]["data"] = [d for d in invoice["lines"]["data"] if d["id"] != line["id"]]

    def _replace_line(self, invoice: StripeObject, item: StripeObject) -> None:
        """The draft's line of ``item`` made again from the item, in place: its id and its place are kept."""
        old = next((d for d in self.invoice_lines(invoice["id"]) if _invoice_item_of(d) == item["id"]), None)
        fresh = self._add_invoice_item_line(invoice, item)
        if old is not None:
            self.store.remove(fresh["id"])
            data = invoice["lines"]["data"]
            data.pop()  # the fresh line, appended
            old.update(clone({k: v for k, v in fresh.items() if k not in ("id", "_seq")}))
            invoice["lines"]["data"] = [clone(old) if d["id"] == old["id"] else d for d in data]
        self._recompute(invoice)


def _invoice_item_of(line: StripeObject) -> str | None:
    """The invoice item a line bills (None: a subscription item's own line)."""
    details = line["parent"]["invoice_item_details"] or line["parent"]["subscription_item_details"]
    return details.get("invoice_item") if details else None
