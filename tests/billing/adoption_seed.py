"""A Stripe account that was in use before Tollgate: products, prices, a coupon and a promotion code,
customers (most with the tenant's user id in `metadata.user_id`) and subscriptions of mixed shapes, made through
the official SDK on the test's emulator (real emulator objects, real invoices and payments)."""

from dataclasses import dataclass, field
from typing import Any

ACCOUNT_KEY = "sk_test_adopted_account"

MAPPING: dict[str, Any] = {
    "features": [
        {"key": "projects", "name": "Projects", "type": "allocation"},
        {"key": "sso", "name": "Single sign-on", "type": "boolean"},
    ],
    "products": [],  # filled with the seeded Stripe product ids
}

# Every SHAPES[i % len(SHAPES)]-th subscription: (status wanted, items, trial days, discounted, card).
SHAPES = (
    ("active", ("pro",), None, False),
    ("active", ("pro", "seats"), None, True),
    ("trialing", ("team",), 14, False),
    ("past_due", ("pro",), 1, False),
    ("canceled", ("team", "seats"), None, False),
    ("active", ("team",), None, True),
    ("active", ("legacy",), None, False),  # a product the mapping leaves out
)


@dataclass
class Seeded:
    products: dict[str, str]  # name → Stripe product id
    prices: dict[str, str]  # name → Stripe price id
    coupon: str
    promotion_code: str
    mapping: dict[str, Any]
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)  # Stripe id → shape
    customers_without_key: list[str] = field(default_factory=list)


def seed_account(
    sdk: Any, emulator: Any, *, subscriptions: int, without_key: int = 2, legacy_without_key: bool = False
) -> Seeded:
    """`legacy_without_key`: the customers of the unmapped product's subscriptions carry no user id (so none of
    their objects is adopted)."""
    products = {
        name: sdk.v1.products.create({"name": name.title()}).id for name in ("pro", "team", "seats", "legacy")
    }
    prices = {
        "pro": sdk.v1.prices.create(
            {
                "product": products["pro"],
                "currency": "usd",
                "unit_amount": 2900,
                "recurring": {"interval": "month"},
                "lookup_key": "pro_monthly",
            }
        ).id,
        "team": sdk.v1.prices.create(
            {
                "product": products["team"],
                "currency": "usd",
                "unit_amount": 9900,
                "recurring": {"interval": "month"},
            }
        ).id,
        "seats": sdk.v1.prices.create(
            {
                "product": products["seats"],
                "currency": "usd",
                "unit_amount": 500,
                "recurring": {"interval": "month"},
            }
        ).id,
        "legacy": sdk.v1.prices.create(
            {
                "product": products["legacy"],
                "currency": "usd",
                "unit_amount": 1500,
                "recurring": {"interval": "month"},
            }
        ).id,
    }
    coupon = sdk.v1.coupons.create({"percent_off": 20, "duration": "forever", "name": "Launch"}).id
    promo = sdk.v1.promotion_codes.create(
        {"promotion": {"type": "coupon", "coupon": coupon}, "code": "LAUNCH20"}
    ).id
    mapping = {
        "features": MAPPING["features"],
        "products": [
            {"stripe_product": products["pro"], "key": "pro", "features": {"projects": 10, "sso": False}},
            {"stripe_product": products["team"], "key": "team", "features": {"projects": 50, "sso": True}},
            {"stripe_product": products["seats"], "key": "seats", "features": {"projects": 1}},
        ],
    }
    seeded = Seeded(products=products, prices=prices, coupon=coupon, promotion_code=promo, mapping=mapping)
    for number in range(without_key):
        seeded.customers_without_key.append(
            sdk.v1.customers.create({"email": f"nokey{number}@example.com"}).id
        )
    for number in range(subscriptions):
        status, items, trial, discounted = SHAPES[number % len(SHAPES)]
        keyless = legacy_without_key and items == ("legacy",)
        customer = sdk.v1.customers.create(
            {
                "email": f"user{number}@example.com",
                "metadata": {} if keyless else {"user_id": f"user-{number}"},
            }
        )
        if keyless:
            seeded.customers_without_key.append(customer.id)
        params: dict[str, Any] = {
            "customer": customer.id,
            "items": [
                {"price": prices[name], "quantity": 1 + (number % 3) if name != "team" else 1}
                for name in items
            ],
            "default_payment_method": "pm_card_chargeCustomerFail"
            if status == "past_due"
            else "pm_card_visa",
        }
        if trial:
            params["trial_period_days"] = trial
        if discounted:
            params["discounts"] = [{"coupon": coupon}]
        created = sdk.v1.subscriptions.create(params)
        if status == "canceled":
            sdk.v1.subscriptions.cancel(created.id)
        seeded.subscriptions[created.id] = {
            "status": status,
            "items": items,
            "quantity": 1 + (number % 3),
            "user": f"user-{number}",
            "discounted": discounted,
        }
    emulator.advance(2 * 86400)  # the one-day trials end on a card that fails: past_due
    return seeded
