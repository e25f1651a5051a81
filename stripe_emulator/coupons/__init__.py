"""Coupons, promotion codes and discounts (``/v1/coupons``, ``/v1/promotion_codes``); the discounts they
give are applied by Checkout Sessions, subscriptions and their invoices."""

from stripe_emulator.core.account import Account
from stripe_emulator.core.render import render
from stripe_emulator.core.service import Service, Shape
from stripe_emulator.core.store import StripeObject
from stripe_emulator.coupons.models import CouponsBackend, DiscountSpec
from stripe_emulator.coupons.urls import ROUTES


def _coupon(account: Account) -> StripeObject:
    return render(account, account.backend(CouponsBackend).coupon_create(percent_off=25.5, name="Shape"))


def _deleted_coupon(account: Account) -> StripeObject:
    backend = account.backend(CouponsBackend)
    return render(account, backend.coupon_delete(backend.coupon_create(amount_off=100, currency="usd")["id"]))


def _promotion_code(account: Account) -> StripeObject:
    backend = account.backend(CouponsBackend)
    coupon = backend.coupon_create(percent_off=10)
    return render(account, backend.promotion_code_create(coupon_id=coupon["id"]))


def _discount(account: Account) -> StripeObject:
    backend = account.backend(CouponsBackend)
    coupon = backend.coupon_create(percent_off=10, duration="forever")
    return render(account, backend.discount_create(DiscountSpec(coupon=coupon), customer=None))


SERVICE = Service(
    name="coupons",
    routes=ROUTES,
    shapes=[
        Shape("coupon", "coupon", _coupon),
        Shape("deleted_coupon", "deleted_coupon", _deleted_coupon),
        Shape("promotion_code", "promotion_code", _promotion_code),
        Shape("discount", "discount", _discount),
    ],
)

__all__ = ["SERVICE", "CouponsBackend", "DiscountSpec"]
