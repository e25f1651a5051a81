"""Coupons and promotion codes through the API, synced to the emulator, and redeemed end to end: a checkout
with a code, the completed session's webhooks, the discounted invoice and payment, the subscription's
`discount`, a full-price renewal after a `once` coupon, and every refusal leaving nothing behind."""

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from billing.models import CheckoutSession, Coupon, Invoice, Payment, PromotionCode, Subscription
from core.models import AuditLogEntry as CoreAudit
from customers.models import Customer
from tests.catalog import make_catalog
from tests.conftest import Tenant
from tests.projects.factories import ApiKeyFactory, ProjectFactory

# A Stripe account of the project's own (the emulator makes one per secret key).
OWN_ACCOUNT_KEY = "sk_test_own_account_coupons"

OK = "https://app.example.com/ok"
CANCEL = "https://app.example.com/cancel"


def _coupon(api, tenant, **body):
    return api.post("/api/v1/coupons", {"key": "welcome", "duration": "once", **body}, key=tenant.key)


def _code(api, tenant, **body):
    return api.post(
        "/api/v1/promotion_codes", {"code": "WELCOME25", "coupon": "welcome", **body}, key=tenant.key
    )


def _complete(stripe_emulator, session_id, **form):
    done = stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{session_id}/complete",
        body=urlencode({"card": "4242424242424242", **form}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status == 200, done.body
    return done.data()


def _subscribe(api, tenant, **extra):
    return api.post(
        "/api/v1/checkout/subscription",
        {"customer": "user-1", "price": "pro-monthly", "success_url": OK, "cancel_url": CANCEL, **extra},
        key=tenant.key,
    )


def test_coupon_and_promotion_code_are_created_here_and_at_stripe(api, tenant_a, catalog, stripe_sdk):
    response = _coupon(
        api, tenant_a, percent_off="25", name="Welcome", max_redemptions=10, applies_to=["pro"]
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["object"] == "coupon"
    assert (body["key"], body["percent_off"], body["amount_off"], body["currency"]) == (
        "welcome",
        25.0,
        None,
        None,
    )
    assert (body["duration"], body["max_redemptions"], body["applies_to"]) == ("once", 10, ["pro"])
    stripe_coupon = stripe_sdk().v1.coupons.retrieve(body["stripe_coupon_id"])
    assert (stripe_coupon.id, stripe_coupon.percent_off, stripe_coupon.duration) == (body["id"], 25, "once")
    assert stripe_coupon.applies_to.products == [catalog.pro_monthly.product.stripe_product_id]

    code = _code(api, tenant_a, max_redemptions=5)
    assert code.status_code == 201, code.content
    promo = code.json()
    assert (promo["object"], promo["code"], promo["coupon"], promo["active"]) == (
        "promotion_code",
        "WELCOME25",
        "welcome",
        True,
    )
    stripe_promo = stripe_sdk().v1.promotion_codes.retrieve(promo["stripe_promotion_code_id"])
    assert (stripe_promo.code, stripe_promo.promotion.coupon, stripe_promo.max_redemptions) == (
        "WELCOME25",
        body["id"],
        5,
    )
    assert [c["key"] for c in api.get("/api/v1/coupons", key=tenant_a.key).json()["data"]] == ["welcome"]
    assert api.get("/api/v1/coupons/welcome", key=tenant_a.key).json()["id"] == body["id"]
    listed = api.get("/api/v1/promotion_codes?coupon=welcome", key=tenant_a.key).json()["data"]
    assert [p["id"] for p in listed] == [promo["id"]]
    actions = set(CoreAudit.objects.filter(project_id=tenant_a.project.pk).values_list("action", flat=True))
    assert {"coupon.created", "promotion_code.created"} <= actions

    off = api.patch(f"/api/v1/promotion_codes/{promo['id']}", {"active": False}, key=tenant_a.key)
    assert off.status_code == 200
    assert off.json()["active"] is False
    assert stripe_sdk().v1.promotion_codes.retrieve(promo["stripe_promotion_code_id"]).active is False

    deleted = api.delete("/api/v1/coupons/welcome", key=tenant_a.key)
    assert deleted.status_code == 200
    assert api.get("/api/v1/coupons/welcome", key=tenant_a.key).status_code == 404
    assert Coupon.objects.get(pk=body["id"]).deleted_at is not None


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        (
            {"percent_off": "10", "amount_off": 500, "currency": "usd"},
            400,
            "parameter_conflict",
            "percent_off",
        ),
        ({}, 400, "parameter_conflict", "percent_off"),
        ({"percent_off": "150"}, 400, "invalid_parameter", "percent_off"),
        ({"amount_off": 500}, 400, "parameter_missing", "currency"),
        ({"percent_off": "10", "duration": "repeating"}, 400, "parameter_missing", "duration_in_months"),
        ({"percent_off": "10", "duration_in_months": 3}, 400, "parameter_conflict", "duration_in_months"),
        ({"percent_off": "10", "duration": "weekly"}, 400, "invalid_parameter", "duration"),
        ({"percent_off": "10", "redeem_by": "2001-01-01T00:00:00Z"}, 400, "invalid_parameter", "redeem_by"),
        ({"percent_off": "10", "applies_to": ["no-such-product"]}, 404, "resource_missing", "applies_to[0]"),
    ],
)
def test_a_bad_coupon_is_refused_and_nothing_is_written(
    api, tenant_a, catalog, stripe_sdk, body, status, code, param
):
    response = _coupon(api, tenant_a, **body)
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["param"]) == (status, code, param), response.content
    assert not Coupon.objects.exists()
    assert stripe_sdk().v1.coupons.list().data == []


def test_a_taken_key_or_code_is_refused(api, tenant_a, catalog, stripe_sdk):
    assert _coupon(api, tenant_a, percent_off="10").status_code == 201
    again = _coupon(api, tenant_a, percent_off="20")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "key_taken")
    assert len(stripe_sdk().v1.coupons.list().data) == 1
    assert _code(api, tenant_a).status_code == 201
    same = _code(api, tenant_a, code="welcome25")
    assert (same.status_code, same.json()["error"]["code"]) == (409, "code_taken")
    assert PromotionCode.objects.count() == 1
    assert len(stripe_sdk().v1.promotion_codes.list().data) == 1
    bad = _code(api, tenant_a, code="HAS SPACE")
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "code")
    unknown = _code(api, tenant_a, code="OTHER", coupon="nope")
    assert unknown.status_code == 404
    assert PromotionCode.objects.count() == 1


def test_another_projects_coupons_and_codes_are_not_found(api, tenant_a, tenant_b, catalog, catalog_b):
    _coupon(api, tenant_a, percent_off="10")
    promo = _code(api, tenant_a).json()
    assert api.get("/api/v1/coupons/welcome", key=tenant_b.key).status_code == 404
    assert api.delete("/api/v1/coupons/welcome", key=tenant_b.key).status_code == 404
    assert (
        api.patch(f"/api/v1/promotion_codes/{promo['id']}", {"active": False}, key=tenant_b.key).status_code
        == 404
    )
    assert api.get("/api/v1/promotion_codes", key=tenant_b.key).json()["data"] == []
    assert PromotionCode.objects.get(pk=promo["id"]).active is True
    # A code of another project is unknown to this one's checkout.
    response = api.post(
        "/api/v1/checkout/item",
        {
            "customer": "u",
            "price": "credits-1000",
            "success_url": OK,
            "cancel_url": CANCEL,
            "promotion_code": "WELCOME25",
        },
        key=tenant_b.key,
    )
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["param"]) == (
        400,
        "promotion_code_invalid",
        "promotion_code",
    )
    assert not Payment.objects.exists()


def test_a_subscription_checkout_with_a_code_end_to_end(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    _coupon(api, tenant_a, percent_off="25")
    _code(api, tenant_a)
    response = _subscribe(api, tenant_a, promotion_code="welcome25")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["amount_total"] == 2250
    payment = Payment.objects.get(pk=body["payment"])
    assert payment.amount == 2250
    session = stripe_sdk().v1.checkout.sessions.retrieve(body["stripe_session_id"])
    assert (session.amount_subtotal, session.amount_total, session.total_details.amount_discount) == (
        3000,
        2250,
        750,
    )

    completed = _complete(stripe_emulator, body["stripe_session_id"])
    stripe_webhooks.deliver()
    invoice = Invoice.objects.get(stripe_invoice_id=completed["invoice"])
    assert (invoice.subtotal, invoice.discount, invoice.total, invoice.amount_paid) == (3000, 750, 2250, 2250)
    shown = api.get(f"/api/v1/invoices/{invoice.pk}", key=tenant_a.key).json()
    assert (shown["subtotal"], shown["discount"], shown["total"]) == (3000, 750, 2250)
    assert [line["amount"] for line in shown["lines"]] == [3000]
    paid = api.get(f"/api/v1/payments/{payment.pk}", key=tenant_a.key).json()
    assert (paid["status"], paid["amount"], paid["amount_discount"], paid["promotion_code"]) == (
        "succeeded",
        2250,
        750,
        "WELCOME25",
    )
    subscription = Subscription.objects.get(stripe_subscription_id=completed["subscription"])
    represented = api.get(f"/api/v1/subscriptions/{subscription.pk}", key=tenant_a.key).json()
    assert represented["discount"] == {
        "coupon": "welcome",
        "promotion_code": "WELCOME25",
        "percent_off": 25.0,
        "amount_off": None,
        "currency": None,
        "duration": "once",
        "end": None,
    }

    # The renewal after a `once` coupon is charged in full, and the discount leaves the subscription.
    stripe_emulator.advance(32 * 86400)
    stripe_webhooks.deliver()
    renewal = Invoice.objects.filter(subscription=subscription, billing_reason="subscription_cycle").get()
    assert (renewal.subtotal, renewal.discount, renewal.total, renewal.amount_paid) == (3000, 0, 3000, 3000)
    renewal_payment = Payment.objects.get(stripe_invoice_id=renewal.stripe_invoice_id)
    assert (renewal_payment.amount, renewal_payment.amount_discount) == (3000, 0)
    assert api.get(f"/api/v1/subscriptions/{subscription.pk}", key=tenant_a.key).json()["discount"] is None


def test_a_used_up_code_is_refused_with_nothing_written(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    _coupon(api, tenant_a, amount_off=1000, currency="usd")
    _code(api, tenant_a, max_redemptions=1)
    first = _subscribe(api, tenant_a, promotion_code="WELCOME25").json()
    _complete(stripe_emulator, first["stripe_session_id"])
    stripe_webhooks.deliver()
    payments_before = Payment.objects.count()
    sessions_before = len(stripe_sdk().v1.checkout.sessions.list().data)
    refused = api.post(
        "/api/v1/checkout/item",
        {
            "customer": "user-2",
            "price": "credits-1000",
            "success_url": OK,
            "cancel_url": CANCEL,
            "promotion_code": "WELCOME25",
        },
        key=tenant_a.key,
    )
    assert refused.status_code == 400, refused.content
    assert refused.json()["error"]["code"] == "promotion_code_invalid"
    assert refused.json()["error"]["param"] == "promotion_code"
    assert Payment.objects.count() == payments_before
    assert not CheckoutSession.objects.filter(customer__external_id="user-2").exists()
    assert len(stripe_sdk().v1.checkout.sessions.list().data) == sessions_before


@pytest.mark.parametrize("case", ["unknown", "inactive", "expired", "deleted_coupon"])
def test_an_unusable_code_is_refused_everywhere_with_nothing_written(
    api, tenant_a, catalog, stripe_sdk, case
):
    _coupon(api, tenant_a, percent_off="10")
    promo = _code(api, tenant_a).json()
    if case == "inactive":
        api.patch(f"/api/v1/promotion_codes/{promo['id']}", {"active": False}, key=tenant_a.key)
    elif case == "expired":
        PromotionCode.objects.filter(pk=promo["id"]).update(expires_at=timezone.now() - timedelta(minutes=1))
    elif case == "deleted_coupon":
        api.delete("/api/v1/coupons/welcome", key=tenant_a.key)
    code = "NOPE" if case == "unknown" else "WELCOME25"
    for path, body in [
        ("/api/v1/checkout/subscription", {"price": "pro-monthly"}),
        ("/api/v1/checkout/item", {"price": "credits-1000"}),
        ("/api/v1/checkout/cart", {"items": [{"price": "credits-1000", "quantity": 1}]}),
        ("/api/v1/payments", {"price": "credits-1000", "flow": "checkout"}),
    ]:
        response = api.post(
            path,
            {"customer": "user-1", "success_url": OK, "cancel_url": CANCEL, "promotion_code": code, **body},
            key=tenant_a.key,
        )
        assert response.status_code == 400, (path, response.content)
        assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
            "promotion_code_invalid",
            "promotion_code",
        )
    assert not Payment.objects.exists()
    assert stripe_sdk().v1.checkout.sessions.list().data == []


def test_promotion_codes_are_refused_on_the_intent_flow_and_with_allow_promotion_codes(
    api, tenant_a, catalog, stripe_sdk
):
    _coupon(api, tenant_a, percent_off="10")
    _code(api, tenant_a)
    intent = api.post(
        "/api/v1/payments",
        {"customer": "user-1", "price": "credits-1000", "flow": "intent", "promotion_code": "WELCOME25"},
        key=tenant_a.key,
    )
    assert (intent.status_code, intent.json()["error"]["param"]) == (400, "promotion_code")
    both = _subscribe(api, tenant_a, promotion_code="WELCOME25", allow_promotion_codes=True)
    assert (both.status_code, both.json()["error"]["code"]) == (400, "parameter_conflict")
    assert not Payment.objects.exists()
    assert stripe_sdk().v1.payment_intents.list().data == []


@pytest.fixture
def own_account(db, stripe_emulator, stripe_webhooks):
    """A project with its own Stripe account (no other project's codes on it), its catalog and webhooks."""
    api_key = ApiKeyFactory(project=ProjectFactory(slug="own", stripe_secret_key=OWN_ACCOUNT_KEY))
    make_catalog(api_key.project)
    stripe_webhooks.register(api_key.project)
    return Tenant(project=api_key.project, api_key=api_key)


def test_allow_promotion_codes_passes_through_to_stripe_on_the_projects_own_account(
    api, own_account, stripe_sdk, stripe_emulator, stripe_webhooks
):
    _coupon(api, own_account, amount_off=500, currency="usd", duration="forever")
    _code(api, own_account)
    response = _subscribe(api, own_account, allow_promotion_codes=True)
    assert response.status_code == 201, response.content
    body = response.json()
    session = stripe_sdk(OWN_ACCOUNT_KEY).v1.checkout.sessions.retrieve(body["stripe_session_id"])
    assert session.allow_promotion_codes is True
    completed = _complete(stripe_emulator, body["stripe_session_id"], promotion_code="WELCOME25")
    stripe_webhooks.deliver()
    invoice = Invoice.objects.get(stripe_invoice_id=completed["invoice"])
    assert (invoice.discount, invoice.total) == (500, 2500)
    # The code the customer typed on Stripe's page: the payment shows what it took off and what was charged.
    paid = api.get(f"/api/v1/payments/{body['payment']}", key=own_account.key).json()
    assert (paid["amount"], paid["amount_discount"]) == (2500, 500)
    subscription = Subscription.objects.get(stripe_subscription_id=completed["subscription"])
    assert subscription.discount["coupon"] == "welcome"
    assert subscription.discount["duration"] == "forever"


def test_allow_promotion_codes_is_refused_on_the_shared_platform_account_and_nothing_is_made(
    api, tenant_a, tenant_b, catalog, catalog_b, stripe_sdk
):
    """Stripe's code field accepts any active code of the account: on the platform's, another project's too
    (B's LAUNCH25 redeemed on A's checkout, spending B's max_redemptions). Refused before anything is written,
    on every checkout path; A's own codes still go through `promotion_code`."""
    assert (
        api.post(
            "/api/v1/coupons", {"key": "launch", "duration": "once", "percent_off": "25"}, key=tenant_b.key
        ).status_code
        == 201
    )
    launch = api.post(
        "/api/v1/promotion_codes",
        {"code": "LAUNCH25", "coupon": "launch", "max_redemptions": 1},
        key=tenant_b.key,
    ).json()
    sessions_before = len(stripe_sdk().v1.checkout.sessions.list().data)
    customers_before = len(stripe_sdk().v1.customers.list().data)
    for path, body in [
        ("/api/v1/checkout/subscription", {"price": "pro-monthly"}),
        ("/api/v1/checkout/item", {"price": "credits-1000"}),
        ("/api/v1/checkout/cart", {"items": [{"price": "credits-1000", "quantity": 1}]}),
        ("/api/v1/payments", {"price": "credits-1000", "flow": "checkout"}),
    ]:
        response = api.post(
            path,
            {
                "customer": "user-1",
                "success_url": OK,
                "cancel_url": CANCEL,
                "allow_promotion_codes": True,
                **body,
            },
            key=tenant_a.key,
        )
        assert response.status_code == 400, (path, response.content)
        error = response.json()["error"]
        assert (error["code"], error["param"]) == (
            "promotion_codes_need_own_account",
            "allow_promotion_codes",
        )
        assert "promotion_code" in error["message"]
    assert not Payment.objects.exists()
    assert not CheckoutSession.objects.exists()
    assert not Customer.objects.filter(project=tenant_a.project).exists()
    assert len(stripe_sdk().v1.checkout.sessions.list().data) == sessions_before
    assert len(stripe_sdk().v1.customers.list().data) == customers_before
    assert stripe_sdk().v1.promotion_codes.retrieve(launch["stripe_promotion_code_id"]).times_redeemed == 0
    # A's own code, passed by A (checked by Tollgate against A's codes), still works on the shared account.
    _coupon(api, tenant_a, percent_off="10")
    _code(api, tenant_a)
    assert _subscribe(api, tenant_a, promotion_code="WELCOME25").status_code == 201


def test_the_openapi_schema_names_the_refusal_of_allow_promotion_codes(api):
    schema = api.get("/api/schema/", json_body={"format": "json"}).json()
    for path in (
        "/api/v1/checkout/subscription",
        "/api/v1/checkout/item",
        "/api/v1/checkout/cart",
        "/api/v1/payments",
    ):
        ref = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        field = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]["allow_promotion_codes"]
        assert "400 `promotion_codes_need_own_account`" in field["description"], path


def test_the_portal_offers_no_code_field_on_the_shared_platform_account(
    api, tenant_a, tenant_b, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """The billing portal's promotion code field would take any code of the account, as Checkout's does:
    Tollgate's portal configuration lets a customer change price and quantity, never enter a code."""
    api.post("/api/v1/coupons", {"key": "launch", "duration": "once", "percent_off": "25"}, key=tenant_b.key)
    api.post("/api/v1/promotion_codes", {"code": "LAUNCH25", "coupon": "launch"}, key=tenant_b.key)
    assert api.patch("/api/v1/products/pro", {"public": True}, key=tenant_a.key).status_code == 200
    body = _subscribe(api, tenant_a).json()
    _complete(stripe_emulator, body["stripe_session_id"])
    stripe_webhooks.deliver()
    portal = api.post("/api/v1/portal", {"customer": "user-1", "return_url": OK}, key=tenant_a.key)
    assert portal.status_code == 200, portal.content
    (configuration,) = stripe_sdk().v1.billing_portal.configurations.list().data
    update = configuration.features.subscription_update
    assert (update.enabled, update.default_allowed_updates) == (True, ["price", "quantity"])


def test_patch_subscription_applies_a_promotion_code(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    body = _subscribe(api, tenant_a).json()
    completed = _complete(stripe_emulator, body["stripe_session_id"])
    stripe_webhooks.deliver()
    subscription = Subscription.objects.get(stripe_subscription_id=completed["subscription"])
    _coupon(api, tenant_a, amount_off=1000, currency="usd", duration="repeating", duration_in_months=2)
    _code(api, tenant_a)

    refused = api.patch(
        f"/api/v1/subscriptions/{subscription.pk}", {"promotion_code": "NOPE"}, key=tenant_a.key
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "promotion_code_invalid")
    assert stripe_sdk().v1.subscriptions.retrieve(subscription.stripe_subscription_id).discounts == []

    changed = api.patch(
        f"/api/v1/subscriptions/{subscription.pk}", {"promotion_code": "WELCOME25"}, key=tenant_a.key
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["discount"]["coupon"] == "welcome"
    assert changed.json()["discount"]["duration"] == "repeating"
    assert changed.json()["discount"]["end"] is not None
    stripe_webhooks.deliver()
    subscription.refresh_from_db()
    assert subscription.discount["promotion_code"] == "WELCOME25"
    stripe_emulator.advance(32 * 86400)
    stripe_webhooks.deliver()
    renewal = Invoice.objects.filter(subscription=subscription, billing_reason="subscription_cycle").get()
    assert (renewal.subtotal, renewal.discount, renewal.total) == (3000, 1000, 2000)
    assert Payment.objects.get(stripe_invoice_id=renewal.stripe_invoice_id).amount == 2000


def test_a_promotion_code_change_reads_the_subscription_from_stripe_once(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    """The change asks Stripe for the new discount whole (`expand[]=discounts`): the mirror learns its coupon
    from the answer, with no second read of the subscription (one that the read limit could refuse after Stripe
    had applied the change). Reads counted on the wire."""
    from urllib.parse import urlsplit

    from stripe_emulator.sdk import EmulatorHTTPClient
    from stripe_gateway.client import install_http_client

    class CountsReads(EmulatorHTTPClient):
        def __init__(self, emulator: Any) -> None:
            super().__init__(emulator)
            self.reads: list[str] = []

        def request(self, method: str, url: str, headers: Any, post_data: Any = None, **kwargs: Any) -> Any:
            if method.lower() == "get":
                self.reads.append(urlsplit(url).path)
            return super().request(method, url, headers, post_data, **kwargs)

    body = _subscribe(api, tenant_a).json()
    completed = _complete(stripe_emulator, body["stripe_session_id"])
    stripe_webhooks.deliver()
    subscription = Subscription.objects.get(stripe_subscription_id=completed["subscription"])
    _coupon(api, tenant_a, amount_off=1000, currency="usd", duration="forever")
    _code(api, tenant_a)
    transport = CountsReads(stripe_emulator)
    install_http_client(transport)

    changed = api.patch(
        f"/api/v1/subscriptions/{subscription.pk}", {"promotion_code": "WELCOME25"}, key=tenant_a.key
    )

    assert changed.status_code == 200, changed.content
    assert changed.json()["discount"]["coupon"] == "welcome"
    reads = [path for path in transport.reads if path.startswith("/v1/subscriptions/")]
    assert reads == [
        f"/v1/subscriptions/{subscription.stripe_subscription_id}"
    ]  # the change's own look first


def test_a_one_time_payment_with_a_promotion_code_is_charged_the_discounted_amount(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """`POST /payments` of a one-time price (15.00) with a 25 %-off code: the payment and Stripe's Checkout
    Session and PaymentIntent all say 11.25, 3.75 off."""
    _coupon(api, tenant_a, percent_off="25")
    _code(api, tenant_a, max_redemptions=1)

    created = api.post(
        "/api/v1/payments",
        {"customer": "user-1", "price": "credits-1000", "flow": "checkout", "promotion_code": "welcome25",
         "success_url": OK, "cancel_url": CANCEL},
        key=tenant_a.key,
    )  # fmt: skip

    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["type"], body["status"], body["amount"], body["currency"]) == (
        "one_time",
        "pending",
        1125,
        "usd",
    )
    payment = Payment.objects.get(pk=body["id"])
    assert (payment.amount, payment.amount_discount, payment.promotion_code.code) == (1125, 375, "WELCOME25")
    session = stripe_sdk().v1.checkout.sessions.retrieve(payment.stripe_checkout_session_id)
    assert (session.amount_subtotal, session.total_details.amount_discount, session.amount_total) == (
        1500,
        375,
        1125,
    )
    assert [d.promotion_code for d in session.discounts] == [
        PromotionCode.objects.get(code="WELCOME25").stripe_promotion_code_id
    ]

    completed = _complete(stripe_emulator, payment.stripe_checkout_session_id)
    stripe_webhooks.deliver()

    assert stripe_sdk().v1.payment_intents.retrieve(completed["payment_intent"]).amount == 1125
    paid = api.get(f"/api/v1/payments/{body['id']}", key=tenant_a.key).json()
    assert (paid["status"], paid["amount"], paid["amount_discount"], paid["promotion_code"]) == (
        "succeeded",
        1125,
        375,
        "WELCOME25",
    )
    # The code was redeemed once at Stripe: it cannot be used again.
    again = api.post(
        "/api/v1/payments",
        {"customer": "user-2", "price": "credits-1000", "flow": "checkout", "promotion_code": "WELCOME25",
         "success_url": OK, "cancel_url": CANCEL},
        key=tenant_a.key,
    )  # fmt: skip
    assert (again.status_code, again.json()["error"]["code"]) == (400, "promotion_code_invalid")
    assert Payment.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"active": "maybe"}, "invalid_parameter", "active"),
        ({}, "parameter_missing", "active"),
        ({"active": None}, "parameter_missing", "active"),
        ({"active": False, "code": "OTHER"}, "unknown_parameter", "code"),
        ({"active": False, "max_redemptions": 3}, "unknown_parameter", "max_redemptions"),
    ],
)
def test_a_bad_promotion_code_update_changes_nothing(api, tenant_a, catalog, stripe_sdk, body, code, param):
    _coupon(api, tenant_a, percent_off="10")
    promo = _code(api, tenant_a, max_redemptions=5).json()
    before = (
        list(PromotionCode.objects.values_list("code", "active", "max_redemptions", "updated_at")),
        CoreAudit.objects.filter(action__startswith="promotion_code.").count(),
        stripe_sdk().v1.promotion_codes.retrieve(promo["stripe_promotion_code_id"]).to_dict(),
    )

    response = api.patch(f"/api/v1/promotion_codes/{promo['id']}", body, key=tenant_a.key)

    error = response.json()["error"]
    assert (response.status_code, error["type"], error["code"], error["param"]) == (
        400,
        "invalid_request_error",
        code,
        param,
    )
    assert before == (
        list(PromotionCode.objects.values_list("code", "active", "max_redemptions", "updated_at")),
        CoreAudit.objects.filter(action__startswith="promotion_code.").count(),
        stripe_sdk().v1.promotion_codes.retrieve(promo["stripe_promotion_code_id"]).to_dict(),
    )
    unknown = api.patch("/api/v1/promotion_codes/promo_nope", {"active": False}, key=tenant_a.key)
    assert (unknown.status_code, unknown.json()["error"]["type"]) == (404, "not_found")
