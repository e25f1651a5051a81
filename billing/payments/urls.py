"""Routes of checkout, carts, payments and portal (`billing.payments.apis`)."""

from billing.payments import apis
from core.urls import route

urlpatterns = [
    *route("checkout/subscription", apis.CheckoutSubscriptionApi.as_view(), "checkout-subscription"),
    *route("checkout/item", apis.CheckoutItemApi.as_view(), "checkout-item"),
    *route("checkout/cart", apis.CheckoutCartApi.as_view(), "checkout-cart"),
    *route("checkout/<str:session_id>", apis.CheckoutDetailApi.as_view(), "checkout-detail"),
    *route("carts", apis.CartCreateApi.as_view(), "carts"),
    *route("carts/<str:cart_id>", apis.CartDetailApi.as_view(), "cart-detail"),
    *route("carts/<str:cart_id>/items", apis.CartItemCreateApi.as_view(), "cart-items"),
    *route("carts/<str:cart_id>/items/<str:item_id>", apis.CartItemDetailApi.as_view(), "cart-item-detail"),
    *route("payments", apis.PaymentListCreateApi.as_view(), "payments"),
    *route("payments/<str:payment_id>", apis.PaymentDetailApi.as_view(), "payment-detail"),
    *route("payments/<str:payment_id>/status", apis.PaymentStatusApi.as_view(), "payment-status"),
    *route("payments/<str:payment_id>/refund", apis.PaymentRefundApi.as_view(), "payment-refund"),
    *route("payments/<str:payment_id>/cancel", apis.PaymentCancelApi.as_view(), "payment-cancel"),
    *route("portal", apis.PortalApi.as_view(), "portal"),
    *route("portal/eligibility", apis.PortalEligibilityApi.as_view(), "portal-eligibility"),
]
