"""Coupons, promotion codes and the discounts that apply them, with Stripe's rules: a coupon is
``percent_off`` or ``amount_off`` + ``currency``, for ``once`` | ``repeating`` (``duration_in_months``) |
``forever``; only its name and metadata change; it stops being ``valid`` after ``redeem_by`` or
``max_redemptions``. A promotion code is a customer-facing code for one coupon, with its own limits
(``active``, ``expires_at``, ``max_redemptions``, ``customer``, ``restrictions``). A redemption (a discount
on a subscription, or a completed Checkout Session) counts in ``times_redeemed`` of both.

What a discount takes off is computed by :func:`stripe_emulator.coupons.discounts.discount_amounts`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.account import BaseBackend
from stripe_emulator.core.errors import (
    InvalidRequestError,
    ParameterInvalid,
    ResourceAlreadyExists,
    ResourceMissing,
)
from stripe_emulator.core.store import StripeObject, clone

DURATIONS = ("once", "repeating", "forever")
# Stripe: redeem_by at most five years ahead.
MAX_REDEEM_AHEAD = 5 * 366 * 86_400
CODE_PATTERN = re.compile(r"^[a-zA-Z0-9-]{1,500}$")


@dataclass(frozen=True)
class DiscountSpec:
    """A validated ``discounts[n]`` entry: the coupon, and the promotion code it came through (if any)."""

    coupon: StripeObject
    promotion_code: StripeObject | None = None


class CouponsBackend(BaseBackend):
    # -- coupons -------------------------------------------------------------------------------------------

    def coupon_create(
        self,
        *,
        coupon_id: str | None = None,
        percent_off: float | None = None,
        amount_off: int | None = None,
        currency: str | None = None,
        duration: str = "once",
        duration_in_months: int | None = None,
        max_redemptions: int | None = None,
        redeem_by: int | None = None,
        applies_to: list[str] | None = None,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> StripeObject:
        if percent_off is not None and amount_off is not None:
            raise InvalidRequestError(
                "You may only specify one of these parameters: amount_off, percent_off.", param="percent_off"
            )
        if percent_off is None and amount_off is None:
            raise InvalidRequestError(
                "You must specify either percent_off or amount_off.",
                code="parameter_missing",
                param="percent_off",
            )
        if percent_off is not None and not 0 < percent_off <= 100:
            raise ParameterInvalid(
                "Invalid percent_off: must be greater than 0 and less than or equal to 100.",
                param="percent_off",
                code="parameter_invalid_integer",
            )
        if amount_off is not None and currency is None:
            raise InvalidRequestError(
                "You must specify a currency when using amount_off.",
                code="parameter_missing",
                param="currency",
            )
        if percent_off is not None and currency is not None:
            raise InvalidRequestError(
                "You can only specify currency when using amount_off.", param="currency"
            )
        if duration == "repeating" and duration_in_months is None:
            raise InvalidRequestError(
                "You must specify duration_in_months when duration is repeating.",
                code="parameter_missing",
                param="duration_in_months",
            )
        if duration != "repeating" and duration_in_months is not None:
            raise InvalidRequestError(
                "You can only specify duration_in_months when duration is repeating.",
                param="duration_in_months",
            )
        now = self.now()
        if redeem_by is not None and not now < redeem_by <= now + MAX_REDEEM_AHEAD:
            raise ParameterInvalid(
                "Invalid redeem_by: must be in the future and at most five years from now.",
                param="redeem_by",
                code="parameter_invalid_integer",
            )
        if coupon_id is not None and self.store.find(coupon_id) is not None:
            raise ResourceAlreadyExists("Coupon already exists.", param="id")
        products = []
        for i, product_id in enumerate(applies_to or []):
            products.append(
                self.store.require("product", product_id, param=f"applies_to[products][{i}]")["id"]
            )
        coupon: StripeObject = {
            "id": coupon_id or ids.random_token(8).upper(),
            "object": "coupon",
            "amount_off": amount_off,
            "applies_to": {"products": products} if applies_to is not None else None,
            "created": now,
            "currency": currency,
            "currency_options": None,
            "duration": duration,
            "duration_in_months": duration_in_months,
            "livemode": False,
            "max_redemptions": max_redemptions,
            "metadata": metadata or {},
            "name": name,
            "percent_off": percent_off,
            "redeem_by": redeem_by,
            "times_redeemed": 0,
            "valid": True,
        }
        self.store.insert(coupon)
        self.emit("coupon.created", coupon)
        return coupon

    def coupon_require(self, coupon_id: str, *, param: str | None = "id") -> StripeObject:
        coupon = self.store.require("coupon", coupon_id, param=param)
        coupon["valid"] = self._coupon_valid(coupon)
        return coupon

    def _coupon_valid(self, coupon: StripeObject) -> bool:
        if coupon["redeem_by"] is not None and self.now() > coupon["redeem_by"]:
            return False
        limit = coupon["max_redemptions"]
        return limit is None or coupon["times_redeemed"] < limit

    def coupon_update(self, coupon_id: str, changes: dict[str, Any]) -> StripeObject:
        """Only ``name`` and ``metadata`` ever change (the wire layer refuses anything else)."""
        coupon = self.coupon_require(coupon_id)
        before = clone(coupon)
        coupon.update(changes)
        self.emit_update("coupon.updated", coupon, before)
        return coupon

    def coupon_delete(self, coupon_id: str) -> StripeObject:
        """Deleting a coupon stops new redemptions; discounts already applied keep working."""
        coupon = self.coupon_require(coupon_id)
        self.emit("coupon.deleted", coupon)
        coupon["deleted"] = True
        return {"id": coupon_id, "object": "coupon", "deleted": True}

    def coupon_list(self) -> list[StripeObject]:
        coupons = self.store.newest_first("coupon")
        for coupon in coupons:
            coupon["valid"] = self._coupon_valid(coupon)
        return coupons

    # -- promotion codes -----------------------------------------------------------------------------------

    def promotion_code_create(
        self,
        *,
        coupon_id: str,
        code: str | None = None,
        active: bool = True,
        customer: str | None = None,
        expires_at: int | None = None,
        max_redemptions: int | None = None,
        first_time_transaction: bool = False,
        minimum_amount: int | None = None,
        minimum_amount_currency: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> StripeObject:
        coupon = self.coupon_require(coupon_id, param="promotion[coupon]")
        if code is not None and not CODE_PATTERN.match(code):
            raise ParameterInvalid("Invalid code: only letters, digits and dashes are allowed.", param="code")
        if code is not None and active and self._active_code(code) is not None:
            raise ResourceAlreadyExists(
                f"An active promotion code with `code: {code}` already exists.", param="code"
            )
        if customer is not None:
            self.store.require("customer", customer, param="customer")
        now = self.now()
        if expires_at is not None:
            if expires_at <= now:
                raise ParameterInvalid(
                    "Invalid expires_at: must be in the future.",
                    param="expires_at",
                    code="parameter_invalid_integer",
                )
            if coupon["redeem_by"] is not None and expires_at > coupon["redeem_by"]:
                raise InvalidRequestError(
                    "The promotion code's expires_at cannot be after the coupon's redeem_by.",
                    param="expires_at",
                )
        if (
            max_redemptions is not None
            and coupon["max_redemptions"] is not None
            and max_redemptions > coupon["max_redemptions"]
        ):
            raise InvalidRequestError(
                "The promotion code's max_redemptions cannot be greater than the coupon's max_redemptions.",
                param="max_redemptions",
            )
        if (minimum_amount is None) != (minimum_amount_currency is None):
            raise InvalidRequestError(
                "restrictions[minimum_amount] and restrictions[minimum_amount_currency] go together.",
                param="restrictions[minimum_amount_currency]",
            )
        promo: StripeObject = {
            "id": ids.new_id("promo"),
            "object": "promotion_code",
            "active": active,
            "code": code or ids.random_token(8).upper(),
            "created": now,
            "customer": customer,
            "customer_account": None,
            "expires_at": expires_at,
            "livemode": False,
            "max_redemptions": max_redemptions,
            "metadata": metadata or {},
            "promotion": {"coupon": coupon["id"], "type": "coupon"},
            "restrictions": {
                "first_time_transaction": first_time_transaction,
                "minimum_amount": minimum_amount,
                "minimum_amount_currency": minimum_amount_currency,
            },
            "times_redeemed": 0,
        }
        self.store.insert(promo)
        self.emit("promotion_code.created", promo)
        return promo

    def _active_code(self, code: str) -> StripeObject | None:
        for promo in self.store.iter_type("promotion_code"):
            if promo["active"] and promo["code"].lower() == code.lower():
                return promo
        return None

    def promotion_code_require(self, promo_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("promotion_code", promo_id, param=param)

    def promotion_code_update(self, promo_id: str, changes: dict[str, Any]) -> StripeObject:
        promo = self.promotion_code_require(promo_id)
        if changes.get("active") and not promo["active"]:
            holder = self._active_code(promo["code"])
            if holder is not None:
                raise ResourceAlreadyExists(
                    f"An active promotion code with `code: {promo['code']}` already exists.", param="active"
                )
        before = clone(promo)
        promo.update(changes)
        self.emit_update("promotion_code.updated", promo, before)
        return promo

    def promotion_code_list(
        self,
        *,
        active: bool | None = None,
        code: str | None = None,
        coupon: str | None = None,
        customer: str | None = None,
    ) -> list[StripeObject]:
        return self.store.newest_first(
            "promotion_code",
            lambda p: (
                (active is None or p["active"] == active)
                and (code is None or p["code"].lower() == code.lower())
                and (coupon is None or p["promotion"]["coupon"] == coupon)
                and (customer is None or p["customer"] == customer)
            ),
        )

    # -- redemption ----------------------------------------------------------------------------------------

    def discount_specs(
        self,
        entries: list[dict[str, str | None]],
        *,
        param: str,
        customer: str | None,
        currency: str | None,
        amount: int | None = None,
        indexes: list[int] | None = None,
    ) -> list[DiscountSpec]:
        """Validate ``discounts`` entries (``{coupon}`` or ``{promotion_code}``) for a redemption now by
        ``customer`` in ``currency``; raises Stripe's errors naming ``{param}[n][...]``, ``n`` the entry's
        place in the request (``indexes``, when only some of the request's entries are given)."""
        specs: list[DiscountSpec] = []
        for n, entry in zip(indexes or range(len(entries)), entries, strict=True):
            coupon_id, promo_id = entry.get("coupon"), entry.get("promotion_code")
            if coupon_id and promo_id:
                raise InvalidRequestError(
                    "You may only specify one of these parameters: coupon, promotion_code.",
                    param=f"{param}[{n}][promotion_code]",
                )
            promo = None
            if promo_id:
                promo = self.promotion_code_require(promo_id, param=f"{param}[{n}][promotion_code]")
                self._check_promotion_code(promo, f"{param}[{n}][promotion_code]", customer, currency, amount)
                coupon_id = promo["promotion"]["coupon"]
                coupon_param = f"{param}[{n}][promotion_code]"
            elif coupon_id:
                coupon_param = f"{param}[{n}][coupon]"
            else:
                raise InvalidRequestError(
                    "You must specify either coupon or promotion_code.",
                    code="parameter_missing",
                    param=f"{param}[{n}][coupon]",
                )
            coupon = self.store.get("coupon", str(coupon_id))
            if coupon is None or (coupon.get("deleted") and promo is None):
                raise ResourceMissing("coupon", str(coupon_id), param=coupon_param)
            if coupon.get("deleted") or not self._coupon_valid(coupon):
                raise InvalidRequestError(
                    f"Coupon expired: {coupon['id']}", code="coupon_expired", param=coupon_param
                )
            if coupon["amount_off"] is not None and currency is not None and coupon["currency"] != currency:
                raise InvalidRequestError(
                    f"The coupon `{coupon['id']}` is in {coupon['currency']} and cannot be applied to a "
                    f"purchase in {currency}.",
                    param=coupon_param,
                )
            if any(s.coupon["id"] == coupon["id"] for s in specs):
                raise InvalidRequestError("The same coupon cannot be applied twice.", param=coupon_param)
            specs.append(DiscountSpec(coupon=coupon, promotion_code=promo))
        return specs

    def _check_promotion_code(
        self,
        promo: StripeObject,
        param: str,
        customer: str | None,
        currency: str | None,
        amount: int | None,
    ) -> None:
        def refuse(message: str) -> None:
            raise InvalidRequestError(message, param=param)

        if not promo["active"]:
            refuse(f"This promotion code is inactive: {promo['code']}")
        if promo["expires_at"] is not None and self.now() >= promo["expires_at"]:
            refuse(f"This promotion code has expired: {promo['code']}")
        if promo["max_redemptions"] is not None and promo["times_redeemed"] >= promo["max_redemptions"]:
            refuse(f"This promotion code has reached its maximum number of redemptions: {promo['code']}")
        if promo["customer"] is not None and promo["customer"] != customer:
            refuse(f"This promotion code cannot be redeemed by this customer: {promo['code']}")
        restrictions = promo["restrictions"]
        if restrictions["first_time_transaction"] and customer is not None and self._has_paid(customer):
            refuse(
                "This promotion code cannot be redeemed because the associated customer has prior "
                "transactions."
            )
        minimum = restrictions["minimum_amount"]
        if (
            minimum is not None
            and amount is not None
            and (currency != restrictions["minimum_amount_currency"] or amount < minimum)
        ):
            refuse(f"This promotion code requires a minimum purchase of {minimum}.")

    def _has_paid(self, customer: str) -> bool:
        return any(
            invoice["customer"] == customer and invoice["status"] == "paid" and invoice["amount_paid"] > 0
            for invoice in self.store.iter_type("invoice")
        ) or any(
            charge.get("customer") == customer and charge.get("status") == "succeeded"
            for charge in self.store.iter_type("charge")
        )

    def discount_create(
        self,
        spec: DiscountSpec,
        *,
        customer: str | None,
        subscription: str | None = None,
        checkout_session: str | None = None,
        invoice: str | None = None,
    ) -> StripeObject:
        """A redemption: the discount object, and one more ``times_redeemed`` on the coupon and code."""
        now = self.now()
        coupon = spec.coupon
        end = None
        if coupon["duration"] == "repeating":
            from stripe_emulator.subscriptions.periods import add_interval  # billing-period arithmetic

            end = add_interval(now, "month", 1, int(coupon["duration_in_months"]))
        discount: StripeObject = {
            "id": ids.new_id("di"),
            "object": "discount",
            "checkout_session": checkout_session,
            "customer": customer,
            "customer_account": None,
            "end": end,
            "invoice": invoice,
            "invoice_item": None,
            "promotion_code": spec.promotion_code["id"] if spec.promotion_code else None,
            "source": {"coupon": coupon["id"], "type": "coupon"},
            "start": now,
            "subscription": subscription,
            "subscription_item": None,
            # A ``once`` discount is spent by the first invoice that uses it.
            "_used_by": None,
        }
        self.store.insert(discount)
        for redeemed in (coupon, spec.promotion_code):
            if redeemed is not None:
                before = clone(redeemed)
                redeemed["times_redeemed"] += 1
                if redeemed["object"] == "coupon":
                    redeemed["valid"] = self._coupon_valid(redeemed)
                else:
                    self.emit_update("promotion_code.updated", redeemed, before)
        return discount

    def coupon_of(self, discount: StripeObject) -> StripeObject:
        return self.store.get("coupon", discount["source"]["coupon"]) or {}

    def discount_applies(self, discount: StripeObject, *, invoice_id: str, at: int) -> bool:
        """Whether a subscription's discount applies to an invoice made at ``at``: ``forever`` always,
        ``repeating`` until its ``end``, ``once`` only on the first invoice that uses it."""
        duration = self.coupon_of(discount).get("duration")
        if duration == "repeating":
            return discount["end"] is None or at < discount["end"]
        if duration == "once":
            return discount["_used_by"] in (None, invoice_id)
        return True
