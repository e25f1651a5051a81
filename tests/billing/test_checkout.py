"""Checkout for a subscription, a single item and a cart, verified at the emulator through the official SDK."""

import pytest

from billing.models import Cart, CheckoutSession, Payment, Subscription
from billing.services.checkout import checkout_start
from core.errors import InvalidRequest
from customers.models import Customer
from tests.billing.payment_factories import CustomerFactory

OK = "https://app.example.com/ok"
CANCEL = "https://app.example.com/cancel"


def _subscribe(api, tenant, price="pro-monthly", customer="user-1", **extra):
    return api.post(
        "/api/v1/checkout/subscription",
        {"customer": customer, "price": price, "success_url": OK, "cancel_url": CANCEL, **extra},
        key=tenant.key,
    )


def test_subscription_checkout_creates_the_stripe_session(api, tenant_a, catalog, stripe_sdk):
    response = _subscribe(api, tenant_a, quantity=2, metadata={"order": "o-1"})
    assert response.status_code == 201
    body = response.json()
    assert body["object"] == "checkout_session"
    assert body["mode"] == "subscription"
    assert body["status"] == "open"
    assert body["amount_total"] == 6000
    assert body["currency"] == "usd"
    assert body["url"].startswith("http")
    assert body["payment"].startswith("pay_")

    payment = Payment.objects.get(pk=body["payment"])
    customer = Customer.objects.get(project=tenant_a.project, external_id="user-1")
    assert customer.currency == "usd"
    session = stripe_sdk().v1.checkout.sessions.retrieve(body["stripe_session_id"])
    assert session.mode == "subscription"
    assert session.customer == customer.stripe_customer_id
    assert session.client_reference_id == payment.pk
    assert session.amount_total == 6000
    assert session.metadata.to_dict() == {
        "order": "o-1",
        "tollgate_project": tenant_a.project.pk,
        "tollgate_payment": payment.pk,
        "tollgate_customer": customer.pk,
        "tollgate_checkout": body["id"],
    }
    items = stripe_sdk().v1.checkout.sessions.line_items.list(session.id).data
    assert [(item.price.id, item.quantity) for item in items] == [(catalog.pro_monthly.stripe_price_id, 2)]
    assert payment.stripe_checkout_session_id == session.id
    assert payment.checkout_url == session.url == body["url"]


def test_item_checkout_is_payment_mode(api, tenant_a, catalog, stripe_sdk):
    response = api.post(
        "/api/v1/checkout/item",
        {
            "customer": "user-1",
            "price": "credits-1000",
            "quantity": 3,
            "success_url": OK,
            "cancel_url": CANCEL,
        },
        key=tenant_a.key,
    )
    assert response.status_code == 201
    session = stripe_sdk().v1.checkout.sessions.retrieve(response.json()["stripe_session_id"])
    assert session.mode == "payment"
    assert session.amount_total == 4500
    assert Payment.objects.get(pk=response.json()["payment"]).type == "one_time"


def test_cart_checkout_freezes_the_cart(api, tenant_a, catalog, stripe_sdk):
    cart = api.post("/api/v1/carts", {"customer": "user-1"}, key=tenant_a.key).json()
    api.post(f"/api/v1/carts/{cart['id']}/items", {"price": "credits-1000", "quantity": 2}, key=tenant_a.key)
    api.post(f"/api/v1/carts/{cart['id']}/items", {"price": "sticker"}, key=tenant_a.key)
    response = api.post(
        "/api/v1/checkout/cart",
        {"customer": "user-1", "cart": cart["id"], "success_url": OK, "cancel_url": CANCEL},
        key=tenant_a.key,
    )
    assert response.status_code == 201
    assert response.json()["amount_total"] == 3200
    items = stripe_sdk().v1.checkout.sessions.line_items.list(response.json()["stripe_session_id"]).data
    assert sorted((item.price.id, item.quantity) for item in items) == sorted(
        [(catalog.credit_pack.stripe_price_id, 2), (catalog.sticker.stripe_price_id, 1)]
    )
    assert Cart.objects.get(pk=cart["id"]).status == "checked_out"
    frozen = api.post(f"/api/v1/carts/{cart['id']}/items", {"price": "sticker"}, key=tenant_a.key)
    assert frozen.status_code == 409
    again = api.post(
        "/api/v1/checkout/cart",
        {"customer": "user-1", "cart": cart["id"], "success_url": OK, "cancel_url": CANCEL},
        key=tenant_a.key,
    )
    assert again.status_code == 409
    assert Payment.objects.count() == 1


def test_cart_checkout_from_items(api, tenant_a, catalog):
    response = api.post(
        "/api/v1/checkout/cart",
        {
            "customer": "u",
            "items": [{"price": "sticker", "quantity": 5}],
            "success_url": OK,
            "cancel_url": CANCEL,
        },
        key=tenant_a.key,
    )
    assert response.status_code == 201
    assert response.json()["amount_total"] == 1000


def _nothing_written(stripe_sdk, payments=0):
    assert Payment.objects.count() == payments
    assert CheckoutSession.objects.count() == payments
    assert len(stripe_sdk().v1.checkout.sessions.list().data) == payments


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"success_url": "https://evil.example.net/x"}, "success_url", "redirect_not_allowed"),
        ({"cancel_url": "javascript:alert(1)"}, "cancel_url", "invalid_parameter"),
        ({"price": "credits-1000"}, "price", "price_not_recurring"),
        ({"price": "nope"}, "price", "resource_missing"),
        ({"quantity": 0}, "quantity", "invalid_parameter"),
        ({"customer": ""}, "customer", "parameter_missing"),
        ({"coupon": "x"}, "coupon", "unknown_parameter"),
    ],
)
def test_bad_subscription_checkout_is_refused_and_writes_nothing(
    api, tenant_a, catalog, stripe_sdk, body, param, code
):
    response = _subscribe(api, tenant_a, **body)
    assert response.status_code in (400, 404)
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["code"] == code
    _nothing_written(stripe_sdk)


def test_another_projects_price_is_404(api, tenant_a, catalog, catalog_b, stripe_sdk):
    response = _subscribe(api, tenant_a, price=catalog_b.pro_monthly.pk)
    assert response.status_code == 404
    _nothing_written(stripe_sdk)


def test_currency_is_fixed_by_the_first_purchase(api, tenant_a, catalog, stripe_sdk):
    assert _subscribe(api, tenant_a).status_code == 201
    Subscription.objects.all().delete()
    response = api.post(
        "/api/v1/checkout/item",
        {"customer": "user-1", "price": "credits-gbp", "success_url": OK, "cancel_url": CANCEL},
        key=tenant_a.key,
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "currency_mismatch"
    _nothing_written(stripe_sdk, payments=1)


def test_already_subscribed_is_409(api, tenant_a, catalog, stripe_sdk):
    customer = CustomerFactory(project=tenant_a.project, external_id="user-1", currency="usd")
    Subscription.objects.create(
        project=tenant_a.project,
        customer=customer,
        price=catalog.pro_monthly,
        product=catalog.pro,
        status="active",
        stripe_subscription_id="sub_existing",
    )
    response = _subscribe(api, tenant_a)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_subscribed"
    _nothing_written(stripe_sdk)


def test_trial_checkout_has_nothing_to_pay_now(api, tenant_a, catalog, stripe_sdk):
    response = _subscribe(api, tenant_a, trial_days=14)
    assert response.status_code == 201
    assert response.json()["amount_total"] == 0


def test_get_checkout_and_another_projects_is_404(api, tenant_a, tenant_b, catalog):
    created = _subscribe(api, tenant_a).json()
    assert api.get(f"/api/v1/checkout/{created['id']}", key=tenant_a.key).json()["id"] == created["id"]
    assert api.get(f"/api/v1/checkout/{created['id']}", key=tenant_b.key).status_code == 404


def test_the_checkout_service_refuses_a_recurring_price_for_an_item_and_writes_nothing(
    api, tenant_a, catalog, stripe_sdk
):
    with pytest.raises(InvalidRequest) as refused:
        checkout_start(
            project=tenant_a.project,
            kind=Payment.Type.ONE_TIME,
            customer="user-1",
            items=[("pro-monthly", 1)],
            success_url=OK,
            cancel_url=CANCEL,
        )
    assert (refused.value.code, refused.value.param) == ("price_not_one_time", "price")
    assert not Payment.objects.exists()
    assert not Customer.objects.filter(project=tenant_a.project, external_id="user-1").exists()
    _nothing_written(stripe_sdk)

    response = api.post(
        "/api/v1/checkout/item",
        {"customer": "user-1", "price": "pro-monthly", "success_url": OK, "cancel_url": CANCEL},
        key=tenant_a.key,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == refused.value.code
    assert response.json()["error"]["param"] == refused.value.param
    assert response.json()["error"]["message"] == refused.value.message
