"""Customers: behaviour and state transitions (``customer_*``), independent of the wire format.

A deleted customer stays in the store as Stripe's tombstone (``{"id", "object", "deleted": true}``): a
retrieve returns it, other objects may still point at it, lists and updates do not see it.
"""

from __future__ import annotations

import secrets
from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.account import BaseBackend
from stripe_emulator.core.errors import ResourceMissing
from stripe_emulator.core.params import in_range
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.customers.balance import record_balance_transaction


def empty_invoice_settings() -> dict[str, Any]:
    return {
        "custom_fields": None,
        "default_payment_method": None,
        "footer": None,
        "rendering_options": None,
    }


class CustomersBackend(BaseBackend):
    def customer_create(
        self,
        *,
        email: str | None = None,
        name: str | None = None,
        description: str | None = None,
        phone: str | None = None,
        address: dict[str, Any] | None = None,
        shipping: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        balance: int = 0,
        preferred_locales: list[str] | None = None,
        tax_exempt: str = "none",
        invoice_settings: dict[str, Any] | None = None,
        invoice_prefix: str | None = None,
        next_invoice_sequence: int = 1,
        test_clock: str | None = None,
    ) -> StripeObject:
        if test_clock is not None:
            # Objects on a clock are created at its frozen time (see core.context); a deleted clock is gone.
            clock = self.store.get("test_helpers.test_clock", test_clock)
            if clock is None or clock.get("deleted"):
                raise ResourceMissing("test_clock", test_clock, param="test_clock")
        customer: StripeObject = {
            "id": ids.id_for("customer"),
            "object": "customer",
            "address": address,
            "balance": balance,
            "created": self.now(),
            "currency": None,  # set by the first invoice or subscription, as in Stripe
            "default_source": None,
            "delinquent": False,
            "description": description,
            "discount": None,
            "email": email,
            "invoice_prefix": invoice_prefix or secrets.token_hex(4).upper(),
            "invoice_settings": {**empty_invoice_settings(), **(invoice_settings or {})},
            "livemode": False,
            "metadata": metadata or {},
            "name": name,
            "next_invoice_sequence": next_invoice_sequence,
            "phone": phone,
            "preferred_locales": preferred_locales or [],
            "shipping": shipping,
            "tax_exempt": tax_exempt,
            "test_clock": test_clock,
        }
        self.store.insert(customer)
        if balance:
            # The ledger starts with the balance given at creation (see customers.balance).
            record_balance_transaction(self.account, customer, balance, type="initial")
        self.emit("customer.created", customer)
        return customer

    def customer_get(self, customer_id: str) -> StripeObject:
        """Live customer or its deletion tombstone (what ``GET /v1/customers/{id}`` returns)."""
        customer = self.store.get("customer", customer_id)
        if customer is None:
            raise ResourceMissing("customer", customer_id)
        return customer

    def customer_require(self, customer_id: str, *, param: str | None = "id") -> StripeObject:
        """A live customer; other services call this to validate a ``customer`` param."""
        return self.store.require("customer", customer_id, param=param)

    def customer_update(self, customer_id: str, changes: dict[str, Any]) -> StripeObject:
        """Apply already-validated field values (``metadata`` already merged) and emit ``customer.updated``."""
        customer = self.customer_require(customer_id)
        before = clone(customer)
        for field, value in changes.items():
            if field == "invoice_settings":
                customer["invoice_settings"] = {**customer["invoice_settings"], **value}
            else:
                customer[field] = value
        if customer["balance"] != before["balance"]:
            # A balance set directly is an `adjustment` in the customer's balance ledger, as at Stripe.
            delta = int(customer["balance"]) - int(before["balance"])
            record_balance_transaction(self.account, customer, delta, type="adjustment")
        self.emit_update("customer.updated", customer, before)
        return customer

    def customer_delete(self, customer_id: str) -> StripeObject:
        """As Stripe: "permanently deletes a customer … also immediately cancels any active subscriptions on the
        customer" (each ends as a cancellation at once, with its `customer.subscription.deleted`)."""
        # Function-local: the subscriptions backend builds on this one.
        from stripe_emulator.subscriptions.models import SubscriptionsBackend
        from stripe_emulator.subscriptions.models.base import ENDED_STATUSES

        customer = self.customer_require(customer_id)
        subscriptions = self.account.backend(SubscriptionsBackend)
        for sub in self.store.newest_first("subscription"):
            if sub["customer"] == customer_id and sub["status"] not in ENDED_STATUSES:
                subscriptions.subscription_cancel(sub["id"])
        # The event carries the customer as it was, the store keeps only the tombstone.
        self.emit("customer.deleted", customer)
        tombstone = {"id": customer_id, "object": "customer", "deleted": True}
        self.store.replace(tombstone)
        return tombstone

    def customer_sources(self, customer_id: str, *, object_type: str | None = None) -> list[StripeObject]:
        """The customer's payment sources (legacy cards, bank accounts, Sources), newest first, of one
        ``object`` type if given. The emulator has none to offer: its payment methods (``payments``) are what
        replaced them. 404 for an unknown customer."""
        self.customer_require(customer_id, param="customer")
        sources: list[StripeObject] = []
        return [s for s in sources if object_type is None or s["object"] == object_type]

    def customer_list(
        self,
        *,
        email: str | None = None,
        created: dict[str, int] | None = None,
        test_clock: str | None = None,
    ) -> list[StripeObject]:
        return self.store.newest_first(
            "customer",
            lambda c: (
                (email is None or c["email"] == email)
                and in_range(c["created"], created)
                and (test_clock is None or c.get("test_clock") == test_clock)
            ),
        )
