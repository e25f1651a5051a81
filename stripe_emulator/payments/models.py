"""Payments: payment methods, payment intents, charges, refunds and disputes (``payment_method_*``,
``payment_intent_*``, ``charge_*``, ``refund_*``, ``dispute_*``).

The card number decides every outcome (see :mod:`stripe_emulator.payments.cards`). A PaymentIntent moves
``requires_payment_method`` → ``requires_confirmation`` → (``requires_action`` for 3-D Secure) →
``succeeded`` | back to ``requires_payment_method`` with ``last_payment_error`` on a decline, or ``canceled``.
Each confirmation that reaches the card network creates a Charge (``latest_charge``).

Other services learn of PaymentIntent outcomes through :attr:`PaymentsBackend.status_listeners`
(``listener(account, payment_intent, previous_status)``, called under the account lock after every status
change and after that change's events): invoices mark themselves paid, Checkout completes its session.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from stripe_emulator.core import ids
from stripe_emulator.core.account import BaseBackend
from stripe_emulator.core.errors import CardError, InvalidRequestError, ResourceMissing
from stripe_emulator.core.params import in_range
from stripe_emulator.core.render import render
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.payments import cards
from stripe_emulator.payments.cards import Decline, TestCard

if TYPE_CHECKING:
    from stripe_emulator.core.account import Account

StatusListener = Callable[["Account", StripeObject, str], None]

OPEN_STATUSES = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = (*OPEN_STATUSES, "requires_capture", "processing")
DISPUTE_CLOSED = ("won", "lost", "warning_closed")
DISPUTE_RESPONSE_WINDOW = 7 * 86400

EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)


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


def _empty_address() -> dict[str, Any]:
    return dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))


def empty_billing_details() -> dict[str, Any]:
    return {"address": _empty_address(), "email": None, "name": None, "phone": None, "tax_id": None}


class PaymentsBackend(BaseBackend):
    status_listeners: ClassVar[list[StatusListener]] = []
    # Run after every ``status_listeners`` entry: Checkout completes a session only once the invoice a
    # payment belongs to has reacted, so ``checkout.session.completed`` comes last.
    late_status_listeners: ClassVar[list[StatusListener]] = []

    # -- payment methods -----------------------------------------------------------------------------------

    def payment_method_create_from_card(
        self,
        number: str,
        *,
        customer: str | None = None,
        exp_month: int | None = None,
        exp_year: int | None = None,
        billing_details: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> StripeObject:
        """A card PaymentMethod for a raw test card number (any Luhn-valid number with a known brand
        prefix); ``incorrect_number`` card error otherwise. With ``customer`` it is attached at once."""
        card = cards.lookup(number)
        digits = card.number
        if customer is not None:
            self.account.backend(CustomersBackend).customer_require(customer, param="customer")
        year_now = _year(self.now())
        month = exp_month if exp_month is not None else 12
        year = exp_year if exp_year is not None else year_now + 3
        if year < 100:
            year += 2000
        if not 1 <= month <= 12:
            raise CardError(
                "Your card's expiration month is invalid.",
                code="invalid_expiry_month",
                decline_code=None,
                param="card[exp_month]",
            )
        if year < year_now or year > year_now + 50:
            raise CardError(
                "Your card's expiration year is invalid.",
                code="invalid_expiry_year",
                decline_code=None,
                param="card[exp_year]",
            )
        brand = cards.brand_of(digits)
        details = empty_billing_details()
        for key, value in (billing_details or {}).items():
            if key == "address" and value is not None:
                details["address"] = {**_empty_address(), **value}
            else:
                details[key] = value
        pm: StripeObject = {
            "id": ids.id_for("payment_method"),
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": details,
            "card": {
                "brand": brand,
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "unchecked",
                },
                "country": card.country,
                "display_brand": brand,
                "exp_month": month,
                "exp_year": year,
                "fingerprint": cards.fingerprint(digits),
                "funding": card.funding,
                "generated_from": None,
                "last4": digits[-4:],
                "networks": {"available": [brand], "preferred": None},
                "regulated_status": "unregulated",
                "three_d_secure_usage": {"supported": True},
                "wallet": None,
            },
            "created": self.now(),
            "customer": None,
            "customer_account": None,
            "livemode": False,
            "metadata": metadata or {},
            "type": "card",
            "_number": digits,
            "_setup": False,
        }
        if customer is not None:
            self._check_attachable(card)
        self.store.insert(pm)
        if customer is not None:
            pm["customer"] = customer
            self.emit("payment_method.attached", pm)
        return pm

    def payment_method_resolve(self, pm_id: str, *, param: str | None = "payment_method") -> StripeObject:
        """A stored PaymentMethod, or a fresh one cloned from a ``pm_card_…`` test token."""
        number = cards.TOKENS.get(pm_id)
        if number is not None:
            return self.payment_method_create_from_card(number)
        pm = self.store.get("payment_method", pm_id) if isinstance(pm_id, str) else None
        if pm is None:
            raise ResourceMissing("PaymentMethod", pm_id, param=param)
        return pm

    def payment_method_require(self, pm_id: str, *, param: str | None = "id") -> StripeObject:
        pm = self.store.get("payment_method", pm_id)
        if pm is None:
            raise ResourceMissing("PaymentMethod", pm_id, param=param)
        return pm

    def payment_method_attach(self, pm_id: str, customer: str) -> StripeObject:
        self.account.backend(CustomersBackend).customer_require(customer, param="customer")
        if pm_id in cards.TOKENS:
            self._check_attachable(cards.lookup(cards.TOKENS[pm_id]))
        pm = self.payment_method_resolve(pm_id, param="id")
        if pm["customer"] == customer:
            return pm
        if pm["customer"] is not None:
            raise InvalidRequestError(
                "The payment method you provided has already been attached to a customer.",
                code="payment_method_unexpected_state",
                param="payment_method",
            )
        self._check_attachable(cards.lookup(pm["_number"]))
        pm["customer"] = customer
        self.emit("payment_method.attached", pm)
        return pm

    def _check_attachable(self, card: TestCard) -> None:
        # Attaching runs a $0 verification with the issuer: cards that always decline fail it.
        if card.decline is not None and not card.attach_ok:
            decline = card.decline
            raise CardError(decline.message, code=decline.code, decline_code=decline.decline_code)

    def payment_method_detach(self, pm_id: str) -> StripeObject:
        pm = self.payment_method_require(pm_id)
        if pm["customer"] is None:
            raise InvalidRequestError(
                "The payment method you provided is not attached to a customer so detachment is impossible.",
                code="payment_method_unexpected_state",
            )
        customers = self.account.backend(CustomersBackend)
        owner = self.store.get("customer", pm["customer"])
        before = clone(pm)
        pm["customer"] = None
        self.emit("payment_method.detached", pm, previous_attributes={"customer": before["customer"]})
        if (
            owner is not None
            and not owner.get("deleted")
            and owner["invoice_settings"].get("default_payment_method") == pm_id
        ):
            customers.customer_update(owner["id"], {"invoice_settings": {"default_payment_method": None}})
        return pm

    def payment_method_update(self, pm_id: str, changes: dict[str, Any]) -> StripeObject:
        """``changes``: ``metadata`` (merged), ``billing_details`` (merged), ``card`` (``exp_month`` /
        ``exp_year``), ``allow_redisplay``."""
        pm = self.payment_method_require(pm_id)
        before = clone(pm)
        for key, value in changes.items():
            if key == "billing_details":
                for sub, sub_value in value.items():
                    if sub == "address" and sub_value is not None:
                        pm["billing_details"]["address"] = {**pm["billing_details"]["address"], **sub_value}
                    else:
                        pm["billing_details"][sub] = sub_value
            elif key == "card":
                pm["card"].update(value)
            else:
                pm[key] = value
        self.emit_update("payment_method.updated", pm, before)
        return pm

    def payment_method_list(
        self, *, customer: str | None = None, type_: str | None = None
    ) -> list[StripeObject]:
        if customer is not None:
            self.account.backend(CustomersBackend).customer_require(customer, param="customer")
        return self.store.newest_first(
            "payment_method",
            lambda pm: (
                (customer is None or pm["customer"] == customer) and (type_ is None or pm["type"] == type_)
            ),
        )

    # -- payment intents -----------------------------------------------------------------------------------

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
        payment_method_types: list[str] | None = None,
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
        automatic = None if payment_method_types else {"allow_redirects": "always", "enabled": True}
        pi: StripeObject = {
            "id": pi_id,
            "object": "payment_intent",
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
            "payment_method_types": payment_method_types or ["card"],
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

    def payment_intent_require(self, pi_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("payment_intent", pi_id, param=param)

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
        if changes.get("customer") is not None:
            self.account.backend(CustomersBackend).customer_require(changes["customer"], param="customer")
        if changes.get("payment_method") is not None:
            pm = self.payment_method_resolve(changes["payment_method"])
            self._check_pm_customer(pm, changes.get("customer", pi["customer"]))
            changes = {**changes, "payment_method": pm["id"]}
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
        challenge = f"/_emulator/payment_intents/{pi['id']}/authenticate"
        if pi.get("_return_url"):
            return {
                "type": "redirect_to_url",
                "redirect_to_url": {"return_url": pi["_return_url"], "url": challenge},
            }
        return {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": challenge},
        }

    def _notify(self, pi: StripeObject, previous: str) -> None:
        for listener in [*type(self).status_listeners, *type(self).late_status_listeners]:
            listener(self.account, pi, previous)

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

    def _new_charge(
        self,
        pi: StripeObject,
        pm: StripeObject,
        card: TestCard,
        *,
        decline: Decline | None,
        authenticated: bool,
    ) -> StripeObject:
        charge_id = ids.id_for("charge")
        paid = decline is None
        if paid:
            outcome = {
                "advice_code": None,
                "network_advice_code": None,
                "network_decline_code": None,
                "network_status": "approved_by_network",
                "reason": None,
                "risk_level": "normal",
                "risk_score": 20,
                "seller_message": "Payment complete.",
                "type": "authorized",
            }
        else:
            assert decline is not None
            outcome = {
                "advice_code": "try_again_later" if decline.decline_code == "generic_decline" else None,
                "network_advice_code": None,
                "network_decline_code": None,
                "network_status": "declined_by_network",
                "reason": decline.decline_code,
                "risk_level": "normal",
                "risk_score": 20,
                "seller_message": "The bank did not return any further details with this decline.",
                "type": "issuer_declined",
            }
        pm_card = pm["card"]
        three_d_secure = None
        if authenticated:
            three_d_secure = {
                "authentication_flow": "challenge",
                "electronic_commerce_indicator": "05",
                "exemption_indicator": None,
                "result": "authenticated",
                "result_reason": None,
                "transaction_id": str(uuid.uuid4()),
                "version": "2.2.0",
            }
        charge: StripeObject = {
            "id": charge_id,
            "object": "charge",
            "amount": pi["amount"],
            "amount_captured": pi["amount"] if paid else 0,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": None,
            "billing_details": clone(pm["billing_details"]),
            "calculated_statement_descriptor": "TOLLGATE",
            "captured": paid,
            "created": self.now(),
            "currency": pi["currency"],
            "customer": pi["customer"],
            "description": pi["description"],
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": decline.code if decline else None,
            "failure_message": decline.message if decline else None,
            "fraud_details": {},
            "livemode": False,
            "metadata": dict(pi["metadata"]),
            "on_behalf_of": None,
            "outcome": outcome,
            "paid": paid,
            "payment_intent": pi["id"],
            "payment_method": pm["id"],
            "payment_method_details": {
                "card": {
                    "amount_authorized": pi["amount"] if paid else None,
                    "authorization_code": ids.random_token(6).upper() if paid else None,
                    "brand": pm_card["brand"],
                    "checks": clone(pm_card["checks"]),
                    "country": pm_card["country"],
                    "exp_month": pm_card["exp_month"],
                    "exp_year": pm_card["exp_year"],
                    "extended_authorization": {"status": "disabled"},
                    "fingerprint": pm_card["fingerprint"],
                    "funding": pm_card["funding"],
                    "incremental_authorization": {"status": "unavailable"},
                    "installments": None,
                    "last4": pm_card["last4"],
                    "mandate": None,
                    "multicapture": {"status": "unavailable"},
                    "network": pm_card["brand"],
                    "network_token": {"used": False},
                    "network_transaction_id": ids.random_token(15) if paid else None,
                    "overcapture": {"maximum_amount_capturable": pi["amount"], "status": "unavailable"},
                    "regulated_status": "unregulated",
                    "three_d_secure": three_d_secure,
                    "transaction_link_id": None,
                    "wallet": None,
                },
                "type": "card",
            },
            "receipt_email": pi["receipt_email"],
            "receipt_number": None,
            "receipt_url": None,
            "refunded": False,
            "refunds": {
                "object": "list",
                "data": [],
                "has_more": False,
                "url": f"/v1/charges/{charge_id}/refunds",
            },
            "review": None,
            "shipping": None,
            "source": None,
            "source_transfer": None,
            "statement_descriptor": pi["statement_descriptor"],
            "statement_descriptor_suffix": pi["statement_descriptor_suffix"],
            "status": "succeeded" if paid else "failed",
            "transfer_data": None,
            "transfer_group": None,
        }
        self.store.insert(charge)
        return charge

    # -- charges -------------------------------------------------------------------------------------------

    def charge_require(self, charge_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("charge", charge_id, param=param)

    def charge_list(
        self,
        *,
        customer: str | None = None,
        payment_intent: str | None = None,
        created: dict[str, int] | None = None,
    ) -> list[StripeObject]:
        return self.store.newest_first(
            "charge",
            lambda c: (
                (customer is None or c["customer"] == customer)
                and (payment_intent is None or c["payment_intent"] == payment_intent)
                and in_range(c["created"], created)
            ),
        )

    def charge_update(self, charge_id: str, changes: dict[str, Any]) -> StripeObject:
        charge = self.charge_require(charge_id)
        before = clone(charge)
        charge.update(changes)
        self.emit_update("charge.updated", charge, before)
        return charge

    # -- refunds -------------------------------------------------------------------------------------------

    def refund_create(
        self,
        *,
        charge: str | None = None,
        payment_intent: str | None = None,
        amount: int | None = None,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> StripeObject:
        if charge is None and payment_intent is None:
            raise InvalidRequestError(
                "One of the following params should be provided for this request: payment_intent or charge.",
                code="parameter_missing",
            )
        if charge is not None and payment_intent is not None:
            target = self.charge_require(charge, param="charge")
            if target["payment_intent"] != payment_intent:
                raise InvalidRequestError(
                    f"The charge {charge} does not belong to the PaymentIntent {payment_intent}.",
                    param="charge",
                )
        elif charge is not None:
            target = self.charge_require(charge, param="charge")
        else:
            assert payment_intent is not None
            pi = self.payment_intent_require(payment_intent, param="payment_intent")
            if pi["status"] != "succeeded" or pi["latest_charge"] is None:
                raise InvalidRequestError(
                    f"This PaymentIntent ({payment_intent}) does not have a successful charge to refund.",
                    code="charge_not_refundable",
                    param="payment_intent",
                )
            target = self.charge_require(pi["latest_charge"], param="payment_intent")
        if target["status"] != "succeeded" or not target["captured"]:
            raise InvalidRequestError(
                f"Charge {target['id']} has not succeeded and cannot be refunded.",
                code="charge_not_refundable",
                param="charge" if charge else "payment_intent",
            )
        remaining = target["amount_captured"] - target["amount_refunded"]
        if remaining <= 0:
            raise InvalidRequestError(
                f"Charge {target['id']} has already been refunded.", code="charge_already_refunded"
            )
        dispute = self._open_dispute(target["id"])
        if dispute is not None and dispute["status"] not in (
            "warning_needs_response",
            "warning_under_review",
        ):
            raise InvalidRequestError(
                f"Charge {target['id']} has been charged back; cannot issue a refund.", code="charge_disputed"
            )
        if amount is None:
            amount = remaining
        if amount < 1:
            raise InvalidRequestError("This value must be greater than or equal to 1.", param="amount")
        if amount > remaining:
            raise InvalidRequestError(
                f"Refund amount ({_money(amount, target['currency'])}) is greater than unrefunded amount on "
                f"charge ({_money(remaining, target['currency'])})",
                code="amount_too_large",
                param="amount",
            )
        refund: StripeObject = {
            "id": ids.id_for("refund"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": None,
            "charge": target["id"],
            "created": self.now(),
            "currency": target["currency"],
            "customer": target["customer"],
            "customer_account": None,
            "destination_details": {
                "card": {
                    "reference_status": "pending",
                    "reference_type": "acquirer_reference_number",
                    "type": "refund",
                    "reference": None,
                },
                "type": "card",
            },
            "metadata": metadata or {},
            "payment_intent": target["payment_intent"],
            "payment_method": target["payment_method"],
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }
        self.store.insert(refund)
        target["amount_refunded"] += amount
        target["refunded"] = target["amount_refunded"] >= target["amount_captured"]
        self._sync_charge_refunds(target)
        self.emit("refund.created", refund)
        self.emit("charge.refunded", target)
        return refund

    def refund_require(self, refund_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("refund", refund_id, param=param)

    def refund_update(self, refund_id: str, changes: dict[str, Any]) -> StripeObject:
        refund = self.refund_require(refund_id)
        before = clone(refund)
        refund.update(changes)
        if self.emit_update("refund.updated", refund, before) is not None:
            charge = self.store.get("charge", refund["charge"])
            if charge is not None:
                self._sync_charge_refunds(charge)
            self.emit_update("charge.refund.updated", refund, before)
        return refund

    def refund_list(
        self,
        *,
        charge: str | None = None,
        payment_intent: str | None = None,
        created: dict[str, int] | None = None,
    ) -> list[StripeObject]:
        return self.store.newest_first(
            "refund",
            lambda r: (
                (charge is None or r["charge"] == charge)
                and (payment_intent is None or r["payment_intent"] == payment_intent)
                and in_range(r["created"], created)
            ),
        )

    def _sync_charge_refunds(self, charge: StripeObject) -> None:
        refunds = self.refund_list(charge=charge["id"])
        charge["refunds"] = {
            "object": "list",
            "data": [clone(r) for r in refunds[:10]],
            "has_more": len(refunds) > 10,
            "url": f"/v1/charges/{charge['id']}/refunds",
        }

    # -- disputes ------------------------------------------------------------------------------------------

    def dispute_create(self, charge_id: str, *, reason: str = "fraudulent") -> StripeObject:
        """What the issuer does for ``4000000000000259``: a chargeback that needs a response."""
        charge = self.charge_require(charge_id, param="charge")
        now = self.now()
        pm_card = charge["payment_method_details"]["card"]
        dispute: StripeObject = {
            "id": ids.id_for("dispute"),
            "object": "dispute",
            "amount": charge["amount"] - charge["amount_refunded"],
            "balance_transactions": [],
            "charge": charge_id,
            "created": now,
            "currency": charge["currency"],
            "enhanced_eligibility_types": [],
            "evidence": {**dict.fromkeys(EVIDENCE_FIELDS), "enhanced_evidence": {}},
            "evidence_details": {
                "due_by": now + DISPUTE_RESPONSE_WINDOW,
                "enhanced_eligibility": {},
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
            },
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "payment_intent": charge["payment_intent"],
            "payment_method_details": {
                "card": {
                    "brand": pm_card["brand"],
                    "case_type": "chargeback",
                    "network": pm_card["network"],
                    "network_reason_code": "10.4" if pm_card["brand"] == "visa" else "4837",
                },
                "type": "card",
            },
            "reason": reason,
            "status": "needs_response",
        }
        self.store.insert(dispute)
        charge["disputed"] = True
        self.emit("charge.dispute.created", dispute)
        self.emit("charge.dispute.funds_withdrawn", dispute)
        return dispute

    def dispute_require(self, dispute_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("dispute", dispute_id, param=param)

    def dispute_update(
        self,
        dispute_id: str,
        *,
        evidence: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        submit: bool = False,
    ) -> StripeObject:
        dispute = self.dispute_require(dispute_id)
        if dispute["status"] in DISPUTE_CLOSED and (evidence or submit):
            raise InvalidRequestError(
                f"This dispute is already closed ({dispute['status']}); evidence can no longer be submitted.",
            )
        before = clone(dispute)
        if metadata is not None:
            dispute["metadata"] = metadata
        if evidence:
            dispute["evidence"].update(evidence)
            dispute["evidence_details"]["has_evidence"] = True
        if submit and dispute["status"] in ("needs_response", "warning_needs_response"):
            dispute["status"] = (
                "under_review" if dispute["status"] == "needs_response" else "warning_under_review"
            )
            dispute["evidence_details"]["submission_count"] += 1
        self.emit_update("charge.dispute.updated", dispute, before)
        return dispute

    def dispute_close(self, dispute_id: str) -> StripeObject:
        """Accept the dispute: it is lost at once."""
        dispute = self.dispute_require(dispute_id)
        if dispute["status"] in DISPUTE_CLOSED:
            raise InvalidRequestError(f"This dispute is already closed ({dispute['status']}).")
        return self.dispute_resolve(dispute_id, won=False)

    def dispute_resolve(self, dispute_id: str, *, won: bool) -> StripeObject:
        """The issuer's decision (the ``/_emulator/disputes/{id}/resolve`` control)."""
        dispute = self.dispute_require(dispute_id)
        if dispute["status"] in DISPUTE_CLOSED:
            raise InvalidRequestError(f"This dispute is already closed ({dispute['status']}).")
        warning = dispute["status"].startswith("warning_")
        if warning:
            dispute["status"] = "warning_closed"
        else:
            dispute["status"] = "won" if won else "lost"
        self.emit("charge.dispute.closed", dispute)
        if won and not warning:
            self.emit("charge.dispute.funds_reinstated", dispute)
        return dispute

    def dispute_list(
        self,
        *,
        charge: str | None = None,
        payment_intent: str | None = None,
        created: dict[str, int] | None = None,
    ) -> list[StripeObject]:
        return self.store.newest_first(
            "dispute",
            lambda d: (
                (charge is None or d["charge"] == charge)
                and (payment_intent is None or d["payment_intent"] == payment_intent)
                and in_range(d["created"], created)
            ),
        )

    def _open_dispute(self, charge_id: str) -> StripeObject | None:
        for dispute in self.store.iter_type("dispute"):
            if dispute["charge"] == charge_id and dispute["status"] != "won":
                return dispute
        return None


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


def _year(timestamp: int) -> int:
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC).year


def _money(amount: int, currency: str) -> str:
    if currency in _ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    if currency == "usd":
        return f"${amount / 100:.2f}"
    return f"{amount / 100:.2f} {currency.upper()}"


_ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
