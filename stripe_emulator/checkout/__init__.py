"""Checkout Sessions (``/v1/checkout/sessions``) and the hosted payment page (``/checkout/pay/{id}``)."""

from stripe_emulator.checkout.models import CheckoutBackend, expire_sessions
from stripe_emulator.checkout.responses import (
    include_item_taxes,
    include_line_items,
    include_no_amounts,
    include_total_breakdown,
)
from stripe_emulator.checkout.urls import ROUTES
from stripe_emulator.core.account import Account
from stripe_emulator.core.render import render
from stripe_emulator.core.service import Service, Shape
from stripe_emulator.core.store import StripeObject


def _session(account: Account) -> StripeObject:
    session = account.backend(CheckoutBackend).checkout_session_create(
        mode="payment",
        line_items=[
            {
                "price": None,
                "price_data": {"currency": "usd", "unit_amount": 1500, "product_data": {"name": "Shape"}},
                "quantity": 2,
            }
        ],
        success_url="https://example.com/success?session_id={CHECKOUT_SESSION_ID}",
    )
    return render(account, session)


def _item(account: Account) -> StripeObject:
    session = _session(account)
    return render(account, account.backend(CheckoutBackend).checkout_session_line_items(session["id"])[0])


SERVICE = Service(
    name="checkout",
    routes=ROUTES,
    shapes=[
        Shape("checkout.session", "checkout.session", _session),
        Shape("item", "item", _item),
    ],
    advance_hooks=[expire_sessions],
    includes={
        ("checkout.session", "line_items"): include_line_items,
        ("checkout.session", "total_details.breakdown"): include_total_breakdown,
        ("item", "discounts"): include_no_amounts,
        ("item", "taxes"): include_item_taxes,
    },
)

__all__ = ["SERVICE", "CheckoutBackend"]
