"""Payments: payment methods, payment intents, setup intents, charges, refunds and disputes
(``payment_method_*``, ``payment_intent_*``, ``setup_intent_*``, ``charge_*``, ``refund_*``, ``dispute_*``).

The card number decides every outcome (see :mod:`stripe_emulator.payments.cards`). A PaymentIntent moves
``requires_payment_method`` → ``requires_confirmation`` → (``requires_action`` for 3-D Secure) →
``succeeded`` | back to ``requires_payment_method`` with ``last_payment_error`` on a decline, or ``canceled``.
Each confirmation that reaches the card network creates a Charge (``latest_charge``).

Other services learn of PaymentIntent outcomes through :attr:`PaymentsBackend.status_listeners`
(``listener(account, payment_intent, previous_status)``, called under the account lock after every status
change and after that change's events): invoices mark themselves paid, Checkout completes its session.

The backend is composed from one class per resource, as moto composes ``EC2Backend``; only
:class:`PaymentsBackend` is ever passed to ``account.backend()``: :mod:`.base` (lookups, status listeners),
:mod:`.payment_methods`, :mod:`.payment_intents`, :mod:`.setup_intents`, :mod:`.charges`, :mod:`.refunds`, :mod:`.disputes`,
:mod:`.balance_transactions` (the ledger charges, refunds and disputes write).
"""

from __future__ import annotations

from stripe_emulator.core.account import Account
from stripe_emulator.payments.models.refunds import Refunds
from stripe_emulator.payments.models.setup_intents import SetupIntents


class PaymentsBackend(SetupIntents, Refunds):
    """Payment methods, payment and setup intents, charges, refunds and disputes on one account."""


def settle_refunds(account: Account, previous_now: int, now: int) -> None:
    """The advance hook: asynchronous refund outcomes (test cards ``pm_card_pendingRefund`` and
    ``pm_card_refundFail``) due by ``now`` happen, then balance transactions due by then become available."""
    backend = account.backend(PaymentsBackend)
    backend.refunds_settle_due(now)
    backend.balance_transactions_settle()


__all__ = ["PaymentsBackend", "settle_refunds"]
