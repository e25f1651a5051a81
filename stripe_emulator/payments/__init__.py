"""Payments (``/v1/payment_methods``, ``/v1/payment_intents``, ``/v1/setup_intents``, ``/v1/charges``,
``/v1/refunds``, ``/v1/disputes``, ``/v1/balance_transactions``, ``/v1/balance``) and Stripe's test cards."""

from stripe_emulator.core.account import Account
from stripe_emulator.core.render import render
from stripe_emulator.core.service import Service, Shape
from stripe_emulator.core.store import StripeObject
from stripe_emulator.payments.models import PaymentsBackend, settle_refunds
from stripe_emulator.payments.models.payment_intents import PaymentDeclined
from stripe_emulator.payments.urls import ROUTES


def _payment_method(account: Account) -> StripeObject:
    return render(
        account, account.backend(PaymentsBackend).payment_method_create_from_card("4242424242424242")
    )


def _succeeded_intent(account: Account) -> StripeObject:
    return account.backend(PaymentsBackend).payment_intent_create(
        amount=1000, currency="usd", payment_method="pm_card_visa", confirm=True
    )


def _payment_intent(account: Account) -> StripeObject:
    return render(account, _succeeded_intent(account))


def _setup_intent(account: Account) -> StripeObject:
    backend = account.backend(PaymentsBackend)
    return render(account, backend.setup_intent_create(payment_method="pm_card_visa", confirm=True))


def _charge(account: Account) -> StripeObject:
    pi = _succeeded_intent(account)
    return render(account, account.backend(PaymentsBackend).charge_require(pi["latest_charge"]))


def _refund(account: Account) -> StripeObject:
    backend = account.backend(PaymentsBackend)
    return render(account, backend.refund_create(payment_intent=_succeeded_intent(account)["id"], amount=100))


def _refund_of(account: Account, payment_method: str) -> StripeObject:
    backend = account.backend(PaymentsBackend)
    pi = backend.payment_intent_create(
        amount=1000, currency="usd", payment_method=payment_method, confirm=True
    )
    return backend.refund_create(payment_intent=pi["id"], amount=100)


def _pending_refund(account: Account) -> StripeObject:
    return render(account, _refund_of(account, "pm_card_pendingRefund"))


def _failed_refund(account: Account) -> StripeObject:
    backend = account.backend(PaymentsBackend)
    refund = _refund_of(account, "pm_card_refundFail")
    return render(account, backend.refund_settle(refund["id"], succeed=False))


def _balance_transaction(account: Account) -> StripeObject:
    backend = account.backend(PaymentsBackend)
    charge = backend.charge_require(_succeeded_intent(account)["latest_charge"])
    return render(account, backend.balance_transaction_require(charge["balance_transaction"]))


def _balance(account: Account) -> StripeObject:
    _succeeded_intent(account)
    return render(account, account.backend(PaymentsBackend).balance())


def _dispute(account: Account) -> StripeObject:
    backend = account.backend(PaymentsBackend)
    pi = backend.payment_intent_create(
        amount=1000, currency="usd", payment_method="pm_card_createDispute", confirm=True
    )
    return render(account, backend.dispute_list(charge=pi["latest_charge"])[0])


SERVICE = Service(
    name="payments",
    routes=ROUTES,
    shapes=[
        Shape("payment_method", "payment_method", _payment_method),
        Shape("payment_intent", "payment_intent", _payment_intent),
        Shape("setup_intent", "setup_intent", _setup_intent),
        Shape("charge", "charge", _charge),
        Shape("refund", "refund", _refund),
        Shape("refund_pending", "refund", _pending_refund),
        Shape("refund_failed", "refund", _failed_refund),
        Shape("dispute", "dispute", _dispute),
        Shape("balance_transaction", "balance_transaction", _balance_transaction),
        Shape("balance", "balance", _balance),
    ],
    advance_hooks=[settle_refunds],
)

__all__ = ["SERVICE", "PaymentDeclined", "PaymentsBackend"]
