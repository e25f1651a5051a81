"""Routes of the discounts API (`apis`): coupons and promotion codes."""

from billing.discounts import apis
from core.urls import route

urlpatterns = [
    *route("coupons", apis.CouponListCreateApi.as_view(), "coupons"),
    *route("coupons/<str:coupon>", apis.CouponDetailApi.as_view(), "coupon-detail"),
    *route("promotion_codes", apis.PromotionCodeListCreateApi.as_view(), "promotion-codes"),
    *route(
        "promotion_codes/<str:promotion_code>", apis.PromotionCodeDetailApi.as_view(), "promotion-code-detail"
    ),
]
