"""Discounts: coupons (what is taken off) and the promotion codes customers type to redeem them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tollgate_client.pagination import Page
from tollgate_client.resources._base import Resource, compact, path
from tollgate_client.types import Coupon, PromotionCode


class Coupons(Resource):
    def create(
        self,
        *,
        key: str,
        duration: str,
        percent_off: str | float | None = None,
        amount_off: int | None = None,
        currency: str | None = None,
        name: str | None = None,
        duration_in_months: int | None = None,
        max_redemptions: int | None = None,
        redeem_by: str | datetime | None = None,
        applies_to: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Coupon:
        """Exactly one of `percent_off` (0 < p ≤ 100, two decimals; a string keeps it exact) or `amount_off` with
        its `currency` (minor units). `duration`: `once` | `repeating` (with `duration_in_months`) | `forever`.
        `applies_to`: keys of the products it discounts (every product when left out). Created at Stripe too."""
        body = compact(
            key=key,
            duration=duration,
            percent_off=str(percent_off) if percent_off is not None else None,
            amount_off=amount_off,
            currency=currency,
            name=name,
            duration_in_months=duration_in_months,
            max_redemptions=max_redemptions,
            redeem_by=redeem_by,
            applies_to=list(applies_to) if applies_to is not None else None,
        )
        return self._post(Coupon, "/coupons", body, idempotency_key=idempotency_key)

    def retrieve(self, coupon: str) -> Coupon:
        """By key or id."""
        return self._get(Coupon, path("/coupons/{}", coupon))

    def list(self, *, limit: int | None = None, starting_after: str | None = None) -> Page[Coupon]:
        return self._list(Coupon, "/coupons", {"limit": limit, "starting_after": starting_after})

    def delete(self, coupon: str, *, idempotency_key: str | None = None) -> Coupon:
        """Deletes it here and at Stripe: it can no longer be redeemed; discounts already given stay."""
        return self._delete_returning(Coupon, path("/coupons/{}", coupon), idempotency_key=idempotency_key)


class PromotionCodes(Resource):
    def create(
        self,
        *,
        code: str,
        coupon: str,
        max_redemptions: int | None = None,
        expires_at: str | datetime | None = None,
        first_time_transaction: bool | None = None,
        active: bool | None = None,
        idempotency_key: str | None = None,
    ) -> PromotionCode:
        """A code (letters, digits, dashes; unique in the project whatever the case) for a coupon (key or id).
        Customers redeem it as `promotion_code` on checkouts, payments and subscriptions."""
        body = compact(
            code=code,
            coupon=coupon,
            max_redemptions=max_redemptions,
            expires_at=expires_at,
            first_time_transaction=first_time_transaction,
            active=active,
        )
        return self._post(PromotionCode, "/promotion_codes", body, idempotency_key=idempotency_key)

    def list(
        self,
        *,
        coupon: str | None = None,
        active: bool | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> Page[PromotionCode]:
        params = {
            "coupon": coupon,
            "active": active,
            "limit": limit,
            "starting_after": starting_after,
        }
        return self._list(PromotionCode, "/promotion_codes", params)

    def update(
        self, promotion_code_id: str, *, active: bool, idempotency_key: str | None = None
    ) -> PromotionCode:
        """Turns the code on or off (an inactive code is refused: `promotion_code_invalid`)."""
        url = path("/promotion_codes/{}", promotion_code_id)
        return self._patch(PromotionCode, url, {"active": active}, idempotency_key=idempotency_key)
