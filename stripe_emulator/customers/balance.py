"""Customer balance transactions (``/v1/customers/{customer}/balance_transactions``): the ledger behind a
customer's invoice credit ``balance``.

Every change of ``customer.balance`` is one immutable ``customer_balance_transaction`` (``cbtxn_…``) whose
``amount`` is the change (negative: a credit for the customer, positive: a debit) and whose
``ending_balance`` is the balance after it, so the ledger always sums to the balance, as Stripe keeps it:

* ``initial`` — a customer created with a non-zero ``balance``;
* ``adjustment`` — ``POST …/balance_transactions``, or ``balance`` set by ``POST /v1/customers/{id}``;
* ``applied_to_invoice`` — the balance an invoice takes at finalization (``starting_balance`` →
  ``ending_balance``), and ``unapplied_from_invoice`` — given back when that invoice is voided;
* ``credit_note`` — a credit note's ``credit_amount``, and its reversal when the credit note is voided.

Balance transactions have no webhook events of their own (Stripe has none); the customer's change is one
``customer.updated``.
"""

from __future__ import annotations

from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.account import Account, BaseBackend
from stripe_emulator.core.errors import InvalidRequestError, ResourceMissing
from stripe_emulator.core.params import in_range
from stripe_emulator.core.store import StripeObject, clone

OBJECT = "customer_balance_transaction"
TYPES = (
    "adjustment",
    "applied_to_invoice",
    "credit_note",
    "initial",
    "invoice_overpaid",
    "invoice_too_large",
    "invoice_too_small",
    "unapplied_from_invoice",
    "unspent_receiver_credit",
)


def record_balance_transaction(
    account: Account,
    customer: StripeObject,
    amount: int,
    *,
    type: str,
    currency: str | None = None,
    invoice: str | None = None,
    credit_note: str | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
) -> StripeObject:
    """The ledger entry of a change of ``amount`` that has just been made to ``customer["balance"]`` (the
    caller changes the balance and emits ``customer.updated``)."""
    txn: StripeObject = {
        "id": ids.new_id("cbtxn"),
        "object": OBJECT,
        "amount": amount,
        "checkout_session": None,
        "created": account.now(),
        "credit_note": credit_note,
        "currency": currency or customer.get("currency") or "usd",
        "customer": customer["id"],
        "customer_account": None,
        "description": description,
        "ending_balance": int(customer["balance"]),
        "invoice": invoice,
        "livemode": False,
        "metadata": metadata or {},
        "type": type,
    }
    account.store.insert(txn)
    return txn


class CustomerBalanceBackend(BaseBackend):
    def balance_apply(
        self,
        customer_id: str,
        amount: int,
        *,
        type: str,
        currency: str | None = None,
        invoice: str | None = None,
        credit_note: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        param: str | None = "customer",
        set_currency: bool = False,
    ) -> StripeObject:
        """Move the customer's balance by ``amount`` (one ``customer.updated``) and record it; returns the
        transaction. Other services (invoices, credit notes) change a balance only through this.
        ``set_currency``: an unset customer ``currency`` becomes the transaction's (as Stripe does for a
        transaction created through the API)."""
        customer = self.store.require("customer", customer_id, param=param)
        before = clone(customer)
        customer["balance"] = int(customer["balance"]) + amount
        if set_currency and currency is not None and customer.get("currency") is None:
            customer["currency"] = currency
        txn = record_balance_transaction(
            self.account,
            customer,
            amount,
            type=type,
            currency=currency,
            invoice=invoice,
            credit_note=credit_note,
            description=description,
            metadata=metadata,
        )
        self.emit_update("customer.updated", customer, before)
        return txn

    def balance_transaction_create(
        self,
        customer_id: str,
        *,
        amount: int,
        currency: str,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> StripeObject:
        """``POST /v1/customers/{customer}/balance_transactions``: an ``adjustment``."""
        customer = self.store.require("customer", customer_id, param="customer")
        held = customer.get("currency")
        if held is not None and held != currency:
            # The emulator keeps one balance per customer (no multi-currency ``invoice_credit_balance``).
            raise InvalidRequestError(
                f"The customer's balance is in {held}; this transaction's currency ({currency}) must be the "
                "same.",
                param="currency",
            )
        return self.balance_apply(
            customer_id,
            amount,
            type="adjustment",
            currency=currency,
            description=description,
            metadata=metadata,
            set_currency=True,
        )

    def balance_transaction_require(self, customer_id: str, txn_id: str) -> StripeObject:
        """The customer's transaction; another customer's is as missing as an unknown one."""
        self.store.require("customer", customer_id, param="customer")
        txn = self.store.get(OBJECT, txn_id)
        if txn is None or txn["customer"] != customer_id:
            raise ResourceMissing(OBJECT, txn_id, param="id")
        return txn

    def balance_transaction_update(
        self, customer_id: str, txn_id: str, changes: dict[str, Any]
    ) -> StripeObject:
        """``description`` and ``metadata`` only: the amounts are immutable. No event (Stripe has none)."""
        txn = self.balance_transaction_require(customer_id, txn_id)
        txn.update(changes)
        return txn

    def balance_transaction_list(
        self, customer_id: str, *, invoice: str | None = None, created: dict[str, int] | None = None
    ) -> list[StripeObject]:
        self.store.require("customer", customer_id, param="customer")
        return self.store.newest_first(
            OBJECT,
            lambda t: (
                t["customer"] == customer_id
                and (invoice is None or t["invoice"] == invoice)
                and in_range(t["created"], created)
            ),
        )
