"""Checkout Sessions: creation and validation, the customer's completion of the hosted page (with a test
card), 3-D Secure, and expiry (explicit, by ``expires_at`` through an advance hook, and lazily on reads).

Payment mode confirms a PaymentIntent with the card; subscription mode creates the subscription through
the subscriptions service, whose first invoice is paid on-session; setup mode confirms a SetupIntent (learnt
through ``PaymentsBackend.setup_status_listeners``). A session completes when its payment
succeeds — at once, or later when a 3-D Secure challenge is passed — which this module learns through
``PaymentsBackend.late_status_listeners`` (after the invoices have reacted).

The backend is composed from one class per concern, like
:class:`~stripe_emulator.subscriptions.models.SubscriptionsBackend`; only :class:`CheckoutBackend` is ever
passed to ``account.backend()``:

* :mod:`.base` — constants, reads, expiry;
* :mod:`.discounts` — a session's discount, promotion codes on the page, redemption;
* :mod:`.create` — ``POST /v1/checkout/sessions``;
* :mod:`.completion` — the hosted page's payment, 3-D Secure, completion;
* :mod:`.renewals` — what the subscription a session creates charges after today (the page states it).
"""

from __future__ import annotations

from stripe_emulator.checkout.models.completion import CheckoutCompletion
from stripe_emulator.checkout.models.create import CheckoutCreate
from stripe_emulator.checkout.models.renewals import CheckoutRenewals
from stripe_emulator.core.account import Account
from stripe_emulator.core.store import StripeObject
from stripe_emulator.payments.models import PaymentsBackend


class CheckoutBackend(CheckoutCreate, CheckoutCompletion, CheckoutRenewals):
    """Checkout Sessions and their line items on one account."""


def on_payment_intent_status(account: Account, payment_intent: StripeObject, previous_status: str) -> None:
    """Registered on ``PaymentsBackend.late_status_listeners``: a session completes when its payment succeeds,
    including after a 3-D Secure challenge passed later."""
    if payment_intent["status"] != "succeeded":
        return
    backend = account.backend(CheckoutBackend)
    session_id = payment_intent.get("_checkout_session")
    if session_id is not None:
        session = account.store.get("checkout.session", session_id)
        if session is not None:
            backend._complete(session, paid=True)
        return
    if payment_intent.get("_invoice") is None:
        return
    for session in account.store.iter_type("checkout.session"):
        if session["status"] == "open" and session.get("_pending_payment_intent") == payment_intent["id"]:
            backend._complete(session, paid=True)


def on_setup_intent_status(account: Account, setup_intent: StripeObject, previous_status: str) -> None:
    """Registered on ``PaymentsBackend.setup_status_listeners``: a setup-mode session completes when its
    SetupIntent succeeds, including after a 3-D Secure challenge passed later."""
    session_id = setup_intent.get("_checkout_session")
    session = account.store.get("checkout.session", session_id) if session_id else None
    if setup_intent["status"] == "succeeded" and session is not None:
        account.backend(CheckoutBackend)._complete(session, paid=False)


def expire_sessions(account: Account, previous_now: int, now: int) -> None:
    """Advance hook: open sessions whose ``expires_at`` has passed expire."""
    account.backend(CheckoutBackend).expire_due(now)


if on_payment_intent_status not in PaymentsBackend.late_status_listeners:
    PaymentsBackend.late_status_listeners.append(on_payment_intent_status)
if on_setup_intent_status not in PaymentsBackend.setup_status_listeners:
    PaymentsBackend.setup_status_listeners.append(on_setup_intent_status)


__all__ = ["CheckoutBackend", "expire_sessions"]
