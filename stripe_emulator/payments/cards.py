"""Stripe's test cards: what a card number does when it is attached or charged, and the ``pm_card_…`` test
tokens that stand for them.

Behaviour follows Stripe's testing docs (https://docs.stripe.com/testing): any future expiry date and any
CVC are accepted; the number alone decides the outcome. Numbers that pass the Luhn check but are not in
the table behave like ``4242424242424242`` (the brand still comes from the number's prefix).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from stripe_emulator.core.errors import CardError


@dataclass(frozen=True)
class Decline:
    code: str
    decline_code: str
    message: str


GENERIC = Decline("card_declined", "generic_decline", "Your card was declined.")
INSUFFICIENT_FUNDS = Decline("card_declined", "insufficient_funds", "Your card has insufficient funds.")
EXPIRED = Decline("expired_card", "expired_card", "Your card has expired.")
INCORRECT_CVC = Decline("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect.")
AUTHENTICATION_REQUIRED = Decline(
    "authentication_required",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
)
AUTHENTICATION_FAILED = Decline(
    "payment_intent_authentication_failure",
    "authentication_failure",
    "We are unable to authenticate your payment method. Please choose a different payment method and try "
    "again.",
)


@dataclass(frozen=True)
class TestCard:
    number: str
    description: str
    decline: Decline | None = None  # declined whenever charged (and when attached, unless ``attach_ok``)
    attach_ok: bool = True  # False: attaching to a customer is refused with ``decline`` too
    three_d_secure: str | None = None  # "always" | "unless_setup"
    dispute: bool = False  # the payment succeeds, then a fraudulent dispute opens
    # What a refund of a payment with this card does later (see payments/models/refunds.py): None settles at
    # once as ``succeeded``; "succeed" starts ``pending`` and succeeds; "fail" starts ``succeeded`` and fails.
    refund: str | None = None
    funding: str = "credit"
    country: str = "US"


CARDS: dict[str, TestCard] = {
    card.number: card
    for card in (
        TestCard("4242424242424242", "Visa: succeeds"),
        TestCard("5555555555554444", "Mastercard: succeeds"),
        TestCard("4000000000000002", "Declined (generic_decline)", decline=GENERIC, attach_ok=False),
        TestCard(
            "4000000000009995", "Declined (insufficient_funds)", decline=INSUFFICIENT_FUNDS, attach_ok=False
        ),
        TestCard("4000000000000069", "Declined (expired_card)", decline=EXPIRED, attach_ok=False),
        TestCard("4000000000000127", "Declined (incorrect_cvc)", decline=INCORRECT_CVC, attach_ok=False),
        TestCard("4000000000000341", "Attaches, then fails when charged", decline=GENERIC),
        TestCard("4000002760003184", "3-D Secure required on every payment", three_d_secure="always"),
        TestCard(
            "4000002500003155", "3-D Secure required unless set up for reuse", three_d_secure="unless_setup"
        ),
        TestCard("4000000000000259", "Succeeds, then is disputed (fraudulent)", dispute=True),
        TestCard("4000000000007726", "Succeeds; refunds start pending, then succeed", refund="succeed"),
        TestCard("4000000000005126", "Succeeds; refunds start succeeded, then fail", refund="fail"),
    )
}

TOKENS: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_visa_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_authenticationRequiredOnSetup": "4000002500003155",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_createDispute": "4000000000000259",
    "pm_card_pendingRefund": "4000000000007726",
    "pm_card_refundFail": "4000000000005126",
}

_BRANDS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    # (prefixes, brand, display name)
    (("34", "37"), "amex", "American Express"),
    (("51", "52", "53", "54", "55", "22", "23", "24", "25", "26", "27"), "mastercard", "Mastercard"),
    (("4",), "visa", "Visa"),
    (("6011", "644", "645", "646", "647", "648", "649", "65"), "discover", "Discover"),
    (("35",), "jcb", "JCB"),
    (("36", "38", "39", "300", "301", "302", "303", "304", "305"), "diners", "Diners Club"),
    (("62",), "unionpay", "UnionPay"),
)


def luhn_ok(number: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(number)):
        digit = int(char)
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def normalize(number: str) -> str:
    return number.replace(" ", "").replace("-", "")


def brand_of(number: str) -> str:
    for prefixes, brand, _ in _BRANDS:
        if number.startswith(prefixes):
            return brand
    return "unknown"


def brand_label(brand: str) -> str:
    for _, code, label in _BRANDS:
        if code == brand:
            return label
    return brand.title()


def lookup(number: str) -> TestCard:
    """The test card for a raw number (spaces allowed); :class:`CardError` ``incorrect_number`` when the
    number is not a plausible card number."""
    digits = normalize(number)
    if not digits.isdigit() or not 13 <= len(digits) <= 19 or not luhn_ok(digits):
        raise CardError(
            "Your card number is incorrect.", code="incorrect_number", decline_code=None, param="card[number]"
        )
    if brand_of(digits) == "unknown":
        raise CardError(
            "Your card number is incorrect.", code="incorrect_number", decline_code=None, param="card[number]"
        )
    return CARDS.get(digits) or TestCard(digits, "Succeeds")


def fingerprint(number: str) -> str:
    """Stable per card number (and per emulator), like Stripe's per-account card fingerprint."""
    return hashlib.sha256(f"stripe-emulator:{number}".encode()).hexdigest()[:16]
