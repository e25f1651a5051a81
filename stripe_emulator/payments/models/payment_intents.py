"""Payment intents: create, update, confirm (the card decides: success, decline, or 3-D Secure), the
customer's answer to a 3-D Secure challenge, cancel and list, and the 402 a declined confirmation answers
with (:class:`PaymentDeclined`)."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.errors import CardError, InvalidRequestError
from stripe_emulator.core.params import in_range
from stripe_emulator.core.render import render
from stripe_emulator.core.store import StripeObject
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.payments import cards
from stripe_emulator.payments.cards import Decline, TestCard
from stripe_emulator.payments.models.charges import Charges
from stripe_emulator.payments.models.disputes import Disputes
from stripe_emulator.payments.models.payment_methods import PaymentMethods

OPEN_STATUSES = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = (*OPEN_STATUSES, "requires_capture", "processing")


class PaymentDeclined(CardError):
    """A 402 whose body also carries the ``payment_intent``, ``charge`` and ``payment_method`` involved, as
    Stripe's declines do (the SDK exposes them as ``err.error.payment_intent`` …)."""

    def __init__(self, error: dict[str, Any], extra: dict[str, Any]) -> None:
        super().__init__(
            error["message"],
            code=error["code"],
            decline_code=error.get("decline_code"),
            param=error.get("param"),
        )
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["error"].update(self.extra)
        return body


class PaymentIntents(PaymentMethods, Charges, Disputes):
    def payment_intent_create(
        self,
        *,
        amount: int,
        currency: str,
        customer: str | None = None,
        payment_method: str | None = None,
        metadata: dict[str, str] | None = None,
        description: str | None = None,
        confirm: bool = False,
        off_session: bool = False,
        setup_future_usage: str | None = None,
        invoice: str | None = None,
        allowed_payment_method_types: list[str] | None = None,
        receipt_email: str | None = None,
        statement_descriptor: str | None = None,
        statement_descriptor_suffix: str | None = None,
        return_url: str | None = None,
    ) -> StripeObject:
        if amount < 1:
            raise InvalidRequestError("This value must be greater than or equal to 1.", param="amount")
        if customer is not None:
            self.account.backend(CustomersBackend).customer_require(customer, param="customer")
        if off_session and not confirm:
            raise InvalidRequestError(
                "off_session can only be set when confirm is true.", param="off_session"
            )
        pm = self.payment_method_resolve(payment_method) if payment_method is not None else None
        if pm is not None:
            self._check_pm_customer(pm, customer)
        pi_id = ids.id_for("payment_intent")
        automatic = None if allowed_payment_method_types else {"allow_redirects": "always", "enabled": True}
        pi: StripeObject = {
            "id": pi_id,
            "object": "payment_intent",
            "allowed_payment_method_types": allowed_payment_method_types,
            "amount": amount,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": automatic,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic",
            "client_secret": f"{pi_id}_secret_{ids.random_token(25)}",
            "confirmation_method": "automatic",
            "created": self.now(),
            "currency": currency,
            "customer": customer,
            "customer_account": None,
            "description": description,
            "excluded_payment_method_types": None,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "managed_payments": {"enabled": False},
            "metadata": metadata or {},
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": pm["id"] if pm is not None else None,
            "payment_method_configuration_details": None,
            "payment_method_options": {
                "card": {
                    "installments": None,
                    "mandate_options": None,
                    "network": None,
                    "request_three_d_secure": "automatic",
                }
            },
            "payment_method_types": ["card"],
            "processing": None,
            "receipt_email": receipt_email,
            "review": None,
            "setup_future_usage": setup_future_usage,
            "shipping": None,
            "source": None,
            "statement_descriptor": statement_descriptor,
            "statement_descriptor_suffix": statement_descriptor_suffix,
            "status": "requires_confirmation" if pm is not None else "requires_payment_method",
            "transfer_data": None,
            "transfer_group": None,
            "_invoice": invoice,
            "_return_url": return_url,
        }
        self.store.insert(pi)
        self.emit("payment_intent.created", pi)
        if confirm:
            self.payment_intent_confirm_internal(pi_id, off_session=off_session)
        return pi

    def payment_intent_update(self, pi_id: str, changes: dict[str, Any]) -> StripeObject:
        """Validated field values (metadata already merged). Amount, currency, customer and payment method
        may only change while the intent is open; a new payment method makes it ``requires_confirmation``.
        Stripe sends no event for updates."""
        pi = self.payment_intent_require(pi_id)
        locked = {"amount", "currency", "customer", "payment_method", "setup_future_usage"}
        if pi["status"] not in OPEN_STATUSES:
            for key in changes.keys() & locked:
                raise InvalidRequestError(
                    f"You cannot update {key} on a PaymentIntent with status {pi['status']}.",
                    code="payment_intent_unexpected_state",
                    param=key,
                )
        changes = self._intent_changes_resolved(changes, pi["customer"])
        previous = pi["status"]
        pi.update(changes)
        if "payment_method" in changes and pi["status"] in OPEN_STATUSES:
            pi["status"] = "requires_confirmation" if pi["payment_method"] else "requires_payment_method"
            pi["next_action"] = None
        if pi["status"] != previous:
            self._notify(pi, previous)
        return pi

    def payment_intent_confirm_internal(
        self, pi_id: str, *, payment_method: str | None = None, off_session: bool = False
    ) -> StripeObject:
        """Confirm: never raises for a decline (the outcome is in ``status`` / ``last_payment_error``);
        raises only for requests Stripe refuses outright (wrong state, no payment method)."""
        pi = self.payment_intent_require(pi_id)
        if pi["status"] not in OPEN_STATUSES:
            raise InvalidRequestError(
                f"This PaymentIntent's status is {pi['status']}, but it must be one of "
                "requires_payment_method, requires_confirmation, or requires_action to be confirmed.",
                code="payment_intent_unexpected_state",
            )
        pm_id = payment_method or pi["payment_method"]
        if pm_id is None:
            raise InvalidRequestError(
                "You cannot confirm this PaymentIntent because it's missing a payment method. To confirm "
                "the PaymentIntent with cus_…, specify a payment method attached to this customer along "
                "with the customer ID.",
                code="payment_intent_unexpected_state",
                param="payment_method",
            )
        pm = self.payment_method_resolve(pm_id)
        self._check_pm_customer(pm, pi["customer"])
        card = cards.lookup(pm["_number"])
        pi["payment_method"] = pm["id"]
        pi["_off_session"] = off_session
        if self._needs_authentication(pm, card):
            if off_session:
                self._decline(pi, pm, card, cards.AUTHENTICATION_REQUIRED)
                return pi
            previous = pi["status"]
            pi["status"] = "requires_action"
            pi["last_payment_error"] = None
            pi["next_action"] = self._three_d_secure_action(pi)
            self.emit("payment_intent.requires_action", pi)
            self._notify(pi, previous)
            return pi
        self._charge(pi, pm, card, authenticated=False)
        return pi

    def payment_intent_authenticate(self, pi_id: str, *, succeed: bool = True) -> StripeObject:
        """The customer completes (or fails) the 3-D Secure challenge of a ``requires_action`` intent."""
        pi = self.payment_intent_require(pi_id)
        if pi["status"] != "requires_action":
            raise InvalidRequestError(
                f"This PaymentIntent's status is {pi['status']}; only a PaymentIntent that requires_action "
                "can be authenticated.",
                code="payment_intent_unexpected_state",
            )
        pm = self.payment_method_require(pi["payment_method"], param="payment_method")
        card = cards.lookup(pm["_number"])
        if not succeed:
            previous = pi["status"]
            error = _error_for(cards.AUTHENTICATION_FAILED, pm=render(self.account, pm), charge=None)
            error["type"] = "invalid_request_error"
            error.pop("decline_code", None)
            pi.update(
                status="requires_payment_method",
                payment_method=None,
                next_action=None,
                last_payment_error=error,
            )
            self.emit("payment_intent.payment_failed", pi)
            self._notify(pi, previous)
            return pi
        if pi["setup_future_usage"] is not None:
            pm["_setup"] = True
        self._charge(pi, pm, card, authenticated=True)
        return pi

    def payment_intent_cancel(self, pi_id: str, *, cancellation_reason: str | None = None) -> StripeObject:
        pi = self.payment_intent_require(pi_id)
        if pi["status"] not in CANCELABLE:
            raise InvalidRequestError(
                f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}. Only a "
                "PaymentIntent with one of the following statuses may be canceled: "
                + ", ".join(CANCELABLE)
                + ".",
                code="payment_intent_unexpected_state",
            )
        previous = pi["status"]
        pi.update(
            status="canceled",
            canceled_at=self.now(),
            cancellation_reason=cancellation_reason,
            next_action=None,
        )
        self.emit("payment_intent.canceled", pi)
        self._notify(pi, previous)
        return pi

    def payment_intent_list(
        self, *, customer: str | None = None, created: dict[str, int] | None = None
    ) -> list[StripeObject]:
        return self.store.newest_first(
            "payment_intent",
            lambda pi: (customer is None or pi["customer"] == customer) and in_range(pi["created"], created),
        )

    def payment_intent_decline_error(self, pi: StripeObject) -> PaymentDeclined | None:
        """The 402 a confirming API call answers with when ``pi`` has just failed, else ``None``."""
        error = pi["last_payment_error"]
        if pi["status"] != "requires_payment_method" or error is None:
            return None
        extra: dict[str, Any] = {"payment_intent": render(self.account, pi)}
        for key in ("charge", "payment_method", "advice_code"):
            if error.get(key) is not None:
                extra[key] = error[key]
        return PaymentDeclined(error, extra)

    def _intent_changes_resolved(self, changes: dict[str, Any], customer: str | None) -> dict[str, Any]:
        """An intent update's changes with its new customer checked and its new payment method resolved to an id
        (and checked against the customer the intent will have)."""
        if changes.get("customer") is not None:
            self.account.backend(CustomersBackend).customer_require(changes["customer"], param="customer")
        if changes.get("payment_method") is not None:
            pm = self.payment_method_resolve(changes["payment_method"])
            self._check_pm_customer(pm, changes.get("customer", customer))
            changes = {**changes, "payment_method": pm["id"]}
        return changes

    def _check_pm_customer(self, pm: StripeObject, customer: str | None) -> None:
        if pm["customer"] is not None and pm["customer"] != customer:
            if customer is None:
                raise InvalidRequestError(
                    "The provided PaymentMethod belongs to a Customer, but you did not provide a Customer. "
                    "Pass the Customer's ID in the customer parameter.",
                    param="payment_method",
                )
            raise InvalidRequestError(
                f"The provided PaymentMethod belongs to a different Customer than {customer}.",
                param="payment_method",
            )

    def _needs_authentication(self, pm: StripeObject, card: TestCard) -> bool:
        if card.three_d_secure == "always":
            return True
        return card.three_d_secure == "unless_setup" and not pm.get("_setup")

    def _three_d_secure_action(self, pi: StripeObject) -> dict[str, Any]:
        challenge = self.account.emulator.url_for(f"/_emulator/payment_intents/{pi['id']}/authenticate")
        if pi.get("_return_url"):
            return {
                "type": "redirect_to_url",
                "redirect_to_url": {"return_url": pi["_return_url"], "url": challenge},
            }
        return {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": challenge},
        }

    def _charge(self, pi: StripeObject, pm: StripeObject, card: TestCard, *, authenticated: bool) -> None:
        if card.decline is not None:
            self._decline(pi, pm, card, card.decline)
            return
        previous = pi["status"]
        charge = self._new_charge(pi, pm, card, decline=None, authenticated=authenticated)
        if pi["setup_future_usage"] is not None and pi["customer"] is not None:
            pm["_setup"] = True
            if pm["customer"] is None:
                pm["customer"] = pi["customer"]
                self.emit("payment_method.attached", pm)
        pi.update(
            status="succeeded",
            amount_received=pi["amount"],
            latest_charge=charge["id"],
            last_payment_error=None,
            next_action=None,
        )
        self.emit("charge.succeeded", charge)
        self.emit("payment_intent.succeeded", pi)
        self._notify(pi, previous)
        if card.dispute:
            self.dispute_create(charge["id"], reason="fraudulent")

    def _decline(self, pi: StripeObject, pm: StripeObject, card: TestCard, decline: Decline) -> None:
        previous = pi["status"]
        charge = self._new_charge(pi, pm, card, decline=decline, authenticated=False)
        pi.update(
            status="requires_payment_method",
            payment_method=None,
            latest_charge=charge["id"],
            next_action=None,
            last_payment_error=_error_for(decline, pm=render(self.account, pm), charge=charge["id"]),
        )
        self.emit("charge.failed", charge)
        self.emit("payment_intent.payment_failed", pi)
        self._notify(pi, previous)


def _error_for(decline: Decline, *, pm: StripeObject | None, charge: str | None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "type": "card_error",
        "code": decline.code,
        "decline_code": decline.decline_code,
        "doc_url": f"https://stripe.com/docs/error-codes/{decline.code}",
        "message": decline.message,
        "payment_method": pm,
    }
    if charge is not None:
        error["charge"] = charge
    if decline.decline_code == "generic_decline":
        error["advice_code"] = "try_again_later"
    return error
