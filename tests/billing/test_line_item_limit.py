"""Stripe's limit of 100 line items per Checkout Session, held by Tollgate before anything is written: a payment or
a cart checkout with more is a 400 (no customer, payment, session or cart change, nothing at Stripe)."""

import pytest

from billing.models import Cart, CartItem, CheckoutSession, Payment
from customers.models import Customer
from tests.billing.factories import PriceFactory

OK = "https://app.example.com/ok"
CANCEL = "https://app.example.com/cancel"


def _nothing_written(stripe_sdk):
    assert (Customer.objects.count(), Payment.objects.count(), CheckoutSession.objects.count()) == (0, 0, 0)
    sdk = stripe_sdk()
    assert (len(sdk.v1.checkout.sessions.list().data), len(sdk.v1.payment_intents.list().data)) == (0, 0)


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/api/v1/payments", {"flow": "checkout"}),
        ("/api/v1/payments", {"flow": "intent"}),
        ("/api/v1/checkout/cart", {}),
    ],
)
def test_more_than_100_items_is_400_and_writes_nothing(api, tenant_a, catalog, stripe_sdk, path, extra):
    body = {
        "customer": "user-1",
        "items": [{"price": "sticker"}] * 101,
        "success_url": OK,
        "cancel_url": CANCEL,
        **extra,
    }
    response = api.post(path, body, key=tenant_a.key)
    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
        "invalid_parameter",
        "items",
    )
    _nothing_written(stripe_sdk)


def test_100_items_reach_stripe_as_100_line_items(api, tenant_a, catalog, stripe_sdk):
    response = api.post(
        "/api/v1/payments",
        {
            "customer": "user-1",
            "items": [{"price": "sticker"}] * 100,
            "flow": "checkout",
            "success_url": OK,
            "cancel_url": CANCEL,
        },
        key=tenant_a.key,
    )
    assert (response.status_code, response.json()["amount"]) == (201, 20_000)
    session_id = CheckoutSession.objects.get().stripe_session_id
    lines = stripe_sdk().v1.checkout.sessions.line_items.list(session_id, {"limit": 100})
    assert (len(lines.data), lines.has_more) == (100, False)


def test_a_cart_of_more_than_100_lines_is_refused_when_expanded(api, tenant_a, catalog, stripe_sdk):
    """Carts stop at 100 prices when filled (409 cart_full); a cart holding more (filled before that rule, or by
    an operator) is refused at checkout, where it becomes Stripe line items, before any row is written."""
    cart = api.post("/api/v1/carts", {"customer": "user-1"}, key=tenant_a.key).json()
    prices = PriceFactory.create_batch(101, project=tenant_a.project, unit_amount=100)
    CartItem.objects.bulk_create(
        CartItem(project=tenant_a.project, cart_id=cart["id"], price=price, quantity=1) for price in prices
    )
    customers_before = list(Customer.objects.values_list("pk", "stripe_customer_id"))

    response = api.post(
        "/api/v1/checkout/cart",
        {"customer": "user-1", "cart": cart["id"], "success_url": OK, "cancel_url": CANCEL},
        key=tenant_a.key,
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("too_many_line_items", "cart")
    assert error["message"] == (
        "At most 100 line items can be paid at once (Stripe's limit per checkout); this has 101."
    )
    assert Cart.objects.get(pk=cart["id"]).status == Cart.Status.OPEN
    assert list(Customer.objects.values_list("pk", "stripe_customer_id")) == customers_before
    assert (Payment.objects.count(), CheckoutSession.objects.count()) == (0, 0)
    assert len(stripe_sdk().v1.checkout.sessions.list().data) == 0
