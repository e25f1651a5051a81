"""Coupon and promotion code routes (promotion codes cannot be deleted, only deactivated)."""

from stripe_emulator.core.routing import Route
from stripe_emulator.coupons import responses

ROUTES = [
    Route("POST", "/v1/coupons", responses.coupon_create),
    Route("GET", "/v1/coupons", responses.coupon_list),
    Route("GET", "/v1/coupons/{id}", responses.coupon_retrieve),
    Route("POST", "/v1/coupons/{id}", responses.coupon_update),
    Route("DELETE", "/v1/coupons/{id}", responses.coupon_delete),
    Route("POST", "/v1/promotion_codes", responses.promotion_code_create),
    Route("GET", "/v1/promotion_codes", responses.promotion_code_list),
    Route("GET", "/v1/promotion_codes/{id}", responses.promotion_code_retrieve),
    Route("POST", "/v1/promotion_codes/{id}", responses.promotion_code_update),
]
