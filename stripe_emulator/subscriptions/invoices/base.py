"""The shared base of :class:`~stripe_emulator.subscriptions.invoices.InvoicesBackend`: constants, the way
to the payments service, the reads (invoices, their lines, their invoice payments) and the totals
recomputed from the lines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stripe_emulator.core.account import Account, BaseBackend
from stripe_emulator.core.store import StripeObject
from stripe_emulator.tax import invoice_taxes_apply

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


class InvoicesBase(BaseBackend):
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
                and (subscription is None or i["_subscription"] == subscription)
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

    # -- totals --------------------------------------------------------------------------------------------

    def _recompute(self, invoice: StripeObject) -> None:
        from stripe_emulator.coupons.invoicing import apply_to_invoice  # the coupons service

        subtotal = sum(line["amount"] for line in invoice["lines"]["data"])
        invoice["subtotal"] = invoice["subtotal_excluding_tax"] = subtotal
        # Discounts come off the subtotal before tax.
        total = subtotal - apply_to_invoice(self.account, invoice)
        invoice["total"] = invoice["total_excluding_tax"] = total
        invoice_taxes_apply(self.account, invoice)  # automatic tax, on the totals after discounts
        if invoice["status"] == "draft":
            invoice["amount_due"] = max(0, invoice["total"])
            invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]
