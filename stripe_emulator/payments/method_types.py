"""The payment-method-type params of this API version, shared by PaymentIntents, SetupIntents and Checkout:
``allowed_payment_method_types`` is taken, the writable ``payment_method_types`` is refused. Stripe removed
it at 2026-09-30.endive ("Removes the payment method types parameter from Payment Intents and Setup
Intents": a 400 with the code ``payment_method_types_no_longer_supported``); the objects still show a
read-only ``payment_method_types``."""

from __future__ import annotations

from stripe_emulator.core.errors import InvalidRequestError, ParameterInvalid
from stripe_emulator.core.params import Params


def refuse_payment_method_types(p: Params) -> None:
    """PaymentIntent create/update/confirm, SetupIntent create/update/confirm: a 400
    ``payment_method_types_no_longer_supported``. (Checkout Sessions, whose changelog entry names no code,
    answer it as the unknown parameter it now is.)"""
    if p.has("payment_method_types"):
        raise InvalidRequestError(
            "The `payment_method_types` parameter is no longer supported on this API version. Use "
            "`allowed_payment_method_types`, `excluded_payment_method_types` or dynamic payment methods "
            "instead.",
            code="payment_method_types_no_longer_supported",
            param="payment_method_types",
        )


def allowed_payment_method_types(
    p: Params, *, exclusive_with: tuple[str, ...], clearable: bool = False
) -> list[str] | None:
    """``allowed_payment_method_types[]`` (PaymentIntents, SetupIntents, Checkout Session create): Stripe
    keeps the compatible ones silently; the emulator knows only cards, so the list must name ``card``.
    Mutually exclusive with ``exclusive_with``. ``clearable`` (SetupIntent update, typed ``''|List``): an
    empty value unsets it (``None``)."""
    types = p.strings("allowed_payment_method_types")
    if types is None:
        return None
    if clearable and not types:
        return None
    for other in exclusive_with:
        if p.has(other):
            raise InvalidRequestError(
                f"You may only specify one of these parameters: allowed_payment_method_types, {other}.",
                param="allowed_payment_method_types",
            )
    if "card" not in types:
        raise ParameterInvalid(
            "None of the payment method types provided in `allowed_payment_method_types` can be used: the "
            "emulator supports only card.",
            param="allowed_payment_method_types",
        )
    return types
