"""Balance transactions (``txn_…``): the account's ledger of funds moving in and out of its Stripe balance, and
the ``balance`` summed from it.

Stripe writes one for every movement of money (https://docs.stripe.com/api/balance_transactions/object,
https://docs.stripe.com/reports/balance-transaction-types); the emulator writes one, once, for each of these:

* a charge that succeeds — ``type``/``reporting_category`` ``charge``, the charge's amount, Stripe's processing
  fee (:func:`processing_fee`), ``charge.balance_transaction``;
* a refund, when it is created (even ``pending``: the funds leave at once) — ``refund``, minus the refund's
  amount, no fee (Stripe keeps the charge's processing fee), ``refund.balance_transaction``;
* a refund that fails later — ``refund_failure``, the amount back, ``refund.failure_balance_transaction``;
* a dispute's withdrawal — ``adjustment`` / ``dispute``, minus the disputed amount and the dispute fee
  (:data:`DISPUTE_FEE`); a won dispute's reinstatement — ``adjustment`` / ``dispute_reversal``, the disputed
  amount back without the dispute fee (Stripe returns "the disputed amount and the dispute countered fee",
  https://support.stripe.com/topics/disputes; the countered fee is not emulated). Both are in the dispute's
  ``balance_transactions``.

A transaction never changes once written, except its ``status``: ``pending`` until ``available_on``
(:data:`AVAILABLE_AFTER` after ``created``) on the clock its customer lives on, then ``available`` — brought up
to date before every read (:meth:`BalanceTransactions.balance_transactions_settle`), as refunds settle lazily.
Payouts, transfers, application fees and Connect are not emulated, so nothing else writes one.
"""

from __future__ import annotations

from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.context import current_test_clock
from stripe_emulator.core.params import in_range
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.payments.models.base import PaymentsBase

OBJECT = "balance_transaction"
AVAILABLE_AFTER = 2 * 86_400
"""Seconds from ``created`` to ``available_on``: Stripe's standard two-day payout schedule for US accounts."""
FEE_PERCENT_TENTHS = 29
FEE_FIXED = 30
"""Stripe's standard US card pricing, 2.9 % + 30¢; the emulator has one fee schedule, for every currency."""
DISPUTE_FEE = 1500
"""Stripe's US dispute fee, 15.00 USD (the same number of minor units in every currency here)."""
DEFAULT_CURRENCY = "usd"


def processing_fee(amount: int) -> int:
    """2.9 % of ``amount`` rounded half up to a minor unit, plus 30 minor units."""
    return (amount * FEE_PERCENT_TENTHS + 500) // 1000 + FEE_FIXED


class BalanceTransactions(PaymentsBase):
    def _balance_transaction_write(
        self,
        *,
        amount: int,
        currency: str,
        type_: str,
        reporting_category: str,
        source: str,
        customer: str | None,
        description: str | None,
        fees: list[tuple[int, str]] | None = None,
    ) -> StripeObject:
        """Write one immutable transaction, ``created`` now on the clock its customer lives on (a test clock's
        frozen time for its customers, as their charges and refunds); ``fees`` are ``(amount, description)``
        pairs of Stripe fees."""
        created = self._clock_now(customer)
        fees = fees or []
        fee = sum(f for f, _ in fees)
        txn: StripeObject = {
            "id": ids.id_for(OBJECT),
            "object": OBJECT,
            "amount": amount,
            "available_on": created + AVAILABLE_AFTER,
            "balance_type": "payments",
            "created": created,
            "currency": currency,
            "description": description,
            "exchange_rate": None,
            "fee": fee,
            "fee_details": [
                {
                    "amount": f,
                    "application": None,
                    "currency": currency,
                    "description": label,
                    "type": "stripe_fee",
                }
                for f, label in fees
            ],
            "net": amount - fee,
            "reporting_category": reporting_category,
            "source": source,
            "status": "pending",
            "type": type_,
            "_customer": customer,
        }
        self.store.insert(txn)
        self._settle_transaction(txn)
        return txn

    def balance_transaction_for_charge(self, charge: StripeObject) -> StripeObject:
        """A succeeded (captured) charge's funds: the amount, less Stripe's processing fee."""
        txn = self._balance_transaction_write(
            amount=charge["amount_captured"],
            currency=charge["currency"],
            type_="charge",
            reporting_category="charge",
            source=charge["id"],
            customer=charge["customer"],
            description=charge["description"],
            fees=[(processing_fee(charge["amount_captured"]), "Stripe processing fees")],
        )
        charge["balance_transaction"] = txn["id"]
        return txn

    def balance_transaction_for_refund(self, refund: StripeObject, charge: StripeObject) -> StripeObject:
        """A refund's funds leaving the balance; no fee is returned at this API version."""
        txn = self._balance_transaction_write(
            amount=-refund["amount"],
            currency=refund["currency"],
            type_="refund",
            reporting_category="refund",
            source=refund["id"],
            customer=refund["customer"],
            description=_for_charge("REFUND FOR", charge),
        )
        refund["balance_transaction"] = txn["id"]
        return txn

    def balance_transaction_for_refund_failure(
        self, refund: StripeObject, charge: StripeObject | None
    ) -> StripeObject:
        """A failed refund's funds coming back to the balance."""
        txn = self._balance_transaction_write(
            amount=refund["amount"],
            currency=refund["currency"],
            type_="refund_failure",
            reporting_category="refund_failure",
            source=refund["id"],
            customer=refund["customer"],
            description=_for_charge("REFUND FAILURE FOR", charge),
        )
        refund["failure_balance_transaction"] = txn["id"]
        return txn

    def balance_transaction_for_dispute(
        self, dispute: StripeObject, customer: str | None, *, reinstated: bool
    ) -> StripeObject:
        """A dispute's withdrawal (the disputed amount and the dispute fee) or, once won, its reinstatement
        (the disputed amount only); appended to the dispute's ``balance_transactions``."""
        txn = self._balance_transaction_write(
            amount=dispute["amount"] if reinstated else -dispute["amount"],
            currency=dispute["currency"],
            type_="adjustment",
            reporting_category="dispute_reversal" if reinstated else "dispute",
            source=dispute["id"],
            customer=customer,
            description=f"Chargeback {'reversal' if reinstated else 'withdrawal'} for {dispute['charge']}",
            fees=[] if reinstated else [(DISPUTE_FEE, "Dispute fee")],
        )
        dispute["balance_transactions"] = [*dispute["balance_transactions"], clone(txn)]
        return txn

    # -- reads ---------------------------------------------------------------------------------------------

    def balance_transaction_require(self, txn_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require(OBJECT, txn_id, param=param)

    def balance_transaction_list(
        self,
        *,
        created: dict[str, int] | None = None,
        currency: str | None = None,
        source: str | None = None,
        type_: str | None = None,
        payout: str | None = None,
    ) -> list[StripeObject]:
        """Newest first. No payouts are emulated, so a ``payout`` filter matches nothing."""
        if payout is not None:
            return []
        return self.store.newest_first(
            OBJECT,
            lambda t: (
                in_range(t["created"], created)
                and (currency is None or t["currency"] == currency)
                and (source is None or t["source"] == source)
                and (type_ is None or t["type"] == type_)
            ),
        )

    def balance(self) -> StripeObject:
        """``GET /v1/balance``: the nets of ``available`` and of ``pending`` transactions per currency (the
        account's default currency always listed first, at zero without transactions)."""
        sums: dict[str, dict[str, int]] = {DEFAULT_CURRENCY: {"available": 0, "pending": 0}}
        for txn in self.store.iter_type(OBJECT):
            totals = sums.setdefault(txn["currency"], {"available": 0, "pending": 0})
            totals[txn["status"]] += txn["net"]
        currencies = [DEFAULT_CURRENCY, *sorted(c for c in sums if c != DEFAULT_CURRENCY)]

        def funds(status: str) -> list[dict[str, Any]]:
            return [
                {"amount": sums[c][status], "currency": c, "source_types": {"card": sums[c][status]}}
                for c in currencies
            ]

        return {
            "object": "balance",
            "available": funds("available"),
            "connect_reserved": [{"amount": 0, "currency": c} for c in currencies],
            "livemode": False,
            "pending": funds("pending"),
        }

    # -- availability --------------------------------------------------------------------------------------

    def balance_transactions_settle(self) -> None:
        """Every ``pending`` transaction whose ``available_on`` has come on its customer's clock becomes
        ``available`` (the copies in disputes' ``balance_transactions`` too). Stripe's ``balance.available``
        event is not emulated."""
        changed = [t for t in self.store.iter_type(OBJECT) if self._settle_transaction(t)]
        if not changed:
            return
        by_id = {t["id"]: t for t in changed}
        for dispute in self.store.iter_type("dispute"):
            embedded = dispute.get("balance_transactions") or []
            if any(t["id"] in by_id for t in embedded):
                dispute["balance_transactions"] = [
                    clone(by_id[t["id"]]) if t["id"] in by_id else t for t in embedded
                ]

    def _settle_transaction(self, txn: StripeObject) -> bool:
        if txn["status"] != "pending" or self._clock_now(txn.get("_customer")) < txn["available_on"]:
            return False
        txn["status"] = "available"
        return True

    def _clock_now(self, customer: str | None) -> int:
        """Now on the clock a customer's objects live on: its test clock's frozen time (the target time while
        that clock advances), else the emulator's clock."""
        emulator_now = self.account.emulator.clock.now()
        clock_id = self.account.test_clock_of(customer)
        if clock_id is None:
            return emulator_now
        scope = current_test_clock()
        if scope is not None and scope.clock_id == clock_id:
            return scope.now
        clock = self.store.get("test_helpers.test_clock", clock_id)
        if clock is None or clock.get("deleted"):
            return emulator_now
        return int(clock["frozen_time"])


def _for_charge(prefix: str, charge: StripeObject | None) -> str:
    """Stripe's refund descriptions: ``REFUND FOR CHARGE (<the charge's description>)``, or ``… PAYMENT``."""
    if charge is not None and charge.get("description"):
        return f"{prefix} CHARGE ({charge['description']})"
    return f"{prefix} PAYMENT"
