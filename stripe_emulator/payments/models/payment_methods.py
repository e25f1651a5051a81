"""Payment methods: card PaymentMethods from test card numbers and ``pm_card_…`` tokens, attach (with the
issuer's $0 verification), detach, update and list."""

from __future__ import annotations

import datetime
from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.errors import CardError, InvalidRequestError, ResourceMissing
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.payments import cards
from stripe_emulator.payments.cards import TestCard
from stripe_emulator.payments.models.base import PaymentsBase


def _empty_address() -> dict[str, Any]:
    return dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))


def empty_billing_details() -> dict[str, Any]:
    return {"address": _empty_address(), "email": None, "name": None, "phone": None, "tax_id": None}


def _year(timestamp: int) -> int:
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC).year


class PaymentMethods(PaymentsBase):
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
