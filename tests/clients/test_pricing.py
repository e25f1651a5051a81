"""The client's pricing surface on the live server (issue #15): coupons and promotion codes, a code redeemed on
a payment, the light payment status, subscriptions created server-side and a change previewed, and the public
plans of a pricing page. Each checks exact amounts, what a refusal raises, and that another project's key sees
nothing."""

import pytest
from tollgate_client import ConflictError, InvalidRequestError, NotFoundError
from tollgate_client.types import (
    Coupon,
    PaymentStatusSummary,
    PromotionCode,
    PublicPlan,
    Subscription,
    SubscriptionPreview,
)

from billing.models import Coupon as CouponRow
from billing.models import PromotionCode as PromotionCodeRow
from billing.models import Subscription as SubscriptionRow
from customers.models import Customer
from customers.services.customers import customer_ensure_stripe
from tests.clients.conftest import CANCEL, OK, complete_checkout

pytestmark = pytest.mark.django_db(transaction=True)


def test_coupons_and_promotion_codes(tollgate, tollgate_b, catalog, stripe_sdk):
    coupon = tollgate.coupons.create(key="launch", duration="repeating", duration_in_months=3, percent_off=25)
    assert isinstance(coupon, Coupon)
    assert (
        coupon.key,
        coupon.percent_off,
        coupon.amount_off,
        coupon.duration,
        coupon.duration_in_months,
    ) == (
        "launch",
        25.0,
        None,
        "repeating",
        3,
    )
    assert stripe_sdk().v1.coupons.retrieve(coupon.stripe_coupon_id).percent_off == 25
    fixed = tollgate.coupons.create(
        key="ten-off", duration="once", amount_off=1000, currency="usd", applies_to=["pro"]
    )
    assert (fixed.amount_off, fixed.currency, fixed.applies_to) == (1000, "usd", ["pro"])
    assert tollgate.coupons.retrieve("launch").id == coupon.id
    assert {c.key for c in tollgate.coupons.list().auto_paging_iter()} == {"launch", "ten-off"}

    promo = tollgate.promotion_codes.create(code="LAUNCH25", coupon="launch", max_redemptions=10)
    assert isinstance(promo, PromotionCode)
    assert (promo.code, promo.coupon, promo.max_redemptions, promo.active) == ("LAUNCH25", "launch", 10, True)
    assert [p.id for p in tollgate.promotion_codes.list(coupon="launch").data] == [promo.id]
    off = tollgate.promotion_codes.update(promo.id, active=False)
    assert off.active is False
    assert stripe_sdk().v1.promotion_codes.retrieve(promo.stripe_promotion_code_id).active is False
    assert tollgate.promotion_codes.list(active=True).data == []
    assert [p.id for p in tollgate.promotion_codes.list(active=False).data] == [promo.id]

    deleted = tollgate.coupons.delete("ten-off")
    assert deleted.id == fixed.id
    with pytest.raises(NotFoundError):
        tollgate.coupons.retrieve("ten-off")

    # Refusals: nothing written, here or at Stripe.
    with pytest.raises(InvalidRequestError) as both:
        tollgate.coupons.create(key="both", duration="once", percent_off=10, amount_off=100, currency="usd")
    assert (both.value.code, both.value.param) == ("parameter_conflict", "percent_off")
    with pytest.raises(ConflictError) as taken:
        tollgate.promotion_codes.create(code="launch25", coupon="launch")
    assert taken.value.code == "code_taken"
    assert CouponRow.objects.filter(key="both").count() == 0
    assert PromotionCodeRow.objects.count() == 1
    # Another project's key sees none of it.
    with pytest.raises(NotFoundError):
        tollgate_b.coupons.retrieve("launch")
    with pytest.raises(NotFoundError):
        tollgate_b.promotion_codes.update(promo.id, active=True)
    assert tollgate_b.promotion_codes.list().data == []
    assert PromotionCodeRow.objects.get(pk=promo.id).active is False


def test_a_payment_with_a_promotion_code_and_its_status(
    tollgate, tollgate_b, catalog, stripe_emulator, stripe_sdk, stripe_webhooks
):
    tollgate.coupons.create(key="quarter", duration="once", percent_off="25")
    tollgate.promotion_codes.create(code="QUARTER", coupon="quarter")

    payment = tollgate.payments.create(
        customer="user-1",
        price="credits-1000",
        quantity=2,
        flow="checkout",
        promotion_code="quarter",
        success_url=OK,
        cancel_url=CANCEL,
    )

    assert (payment.amount, payment.amount_discount, payment.promotion_code) == (2250, 750, "QUARTER")
    status = tollgate.payments.status(payment.id)
    assert isinstance(status, PaymentStatusSummary)
    assert (status.id, status.status, status.amount_refunded) == (payment.id, "pending", 0)
    session = stripe_sdk().v1.checkout.sessions.retrieve(payment.stripe_checkout_session_id)
    assert (session.amount_total, session.total_details.amount_discount) == (2250, 750)
    complete_checkout(stripe_emulator, payment.stripe_checkout_session_id)
    stripe_webhooks.deliver()
    tollgate.payments.refund(payment.id, amount=250)
    assert tollgate.payments.status(payment.id).raw == {
        "id": payment.id,
        "status": "partially_refunded",
        "amount_refunded": 250,
    }

    with pytest.raises(InvalidRequestError) as bad:
        tollgate.payments.create(
            customer="user-2", price="credits-1000", flow="intent", promotion_code="QUARTER"
        )
    assert bad.value.param == "promotion_code"
    with pytest.raises(NotFoundError):
        tollgate_b.payments.status(payment.id)


def _saved_card(tenant, sdk, external_id="user-1"):
    customer = Customer.objects.get_or_create(project=tenant.project, external_id=external_id)[0]
    stripe_customer = customer_ensure_stripe(customer=customer)
    pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer}).id
    sdk.v1.customers.update(stripe_customer, {"invoice_settings": {"default_payment_method": pm}})


def test_a_subscription_created_then_a_change_previewed(tollgate, tollgate_b, tenant_a, catalog, stripe_sdk):
    _saved_card(tenant_a, stripe_sdk())

    created = tollgate.subscriptions.create(
        customer="user-1", items=[{"price": "pro-monthly", "quantity": 2}]
    )

    assert isinstance(created, Subscription)
    assert (created.status, created.price, created.quantity) == ("active", "pro-monthly", 2)
    assert [(i.price, i.quantity, i.usage_type) for i in created.items] == [("pro-monthly", 2, "licensed")]
    invoice = stripe_sdk().v1.invoices.list({"limit": 1}).data[0]
    assert invoice.amount_paid == 6000
    with pytest.raises(ConflictError) as again:
        tollgate.subscriptions.create(customer="user-1", price="pro-monthly")
    assert (again.value.code, again.value.param) == ("already_subscribed", "price")

    tollgate.coupons.create(key="half", duration="forever", percent_off=50)
    tollgate.promotion_codes.create(code="HALF", coupon="half")
    preview = tollgate.subscriptions.preview(
        created.id, quantity=3, proration_behavior="none", promotion_code="HALF"
    )

    assert isinstance(preview, SubscriptionPreview)
    assert (preview.amount_due, preview.subtotal, preview.discount, preview.tax, preview.total) == (
        4500,
        9000,
        4500,
        0,
        4500,
    )
    assert [(line.amount, line.quantity, line.proration) for line in preview.lines] == [(9000, 3, False)]
    assert stripe_sdk().v1.subscriptions.retrieve(created.stripe_subscription_id).discounts == []
    with pytest.raises(InvalidRequestError) as unknown_code:
        tollgate.subscriptions.preview(created.id, quantity=3, promotion_code="NOPE")
    assert unknown_code.value.code == "promotion_code_invalid"
    with pytest.raises(NotFoundError):
        tollgate_b.subscriptions.preview(created.id, quantity=3)
    assert SubscriptionRow.objects.get().quantity == 2


def test_public_plans_of_a_pricing_page(tollgate, tollgate_b, tenant_a, catalog):
    tollgate.features.create(key="projects", name="Projects", type="allocation")
    tollgate.products.update("pro", public=True, features={"projects": 10}, description="For teams")
    tollgate.products.create(key="hidden", name="Hidden")

    plans = tollgate.plans.list(project=tenant_a.project.slug)

    assert [type(plan) for plan in plans] == [PublicPlan]
    (plan,) = plans.data
    assert (plan.key, plan.name, plan.description) == ("pro", "Professional", "For teams")
    assert [(p.key, p.currency, p.unit_amount, p.interval) for p in plan.prices] == [
        ("pro-monthly-eur", "eur", 2800, "month"),
        ("pro-monthly", "usd", 3000, "month"),
    ]
    assert [(f.key, f.type, f.value) for f in plan.features] == [("projects", "allocation", 10)]
    # Keyless and public: another project's key reads the same; an unknown project is 404.
    assert [p.key for p in tollgate_b.plans.list(project=tenant_a.project.slug)] == ["pro"]
    with pytest.raises(NotFoundError):
        tollgate.plans.list(project="no-such-project")
