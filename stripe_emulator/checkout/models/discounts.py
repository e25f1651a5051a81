"""A Checkout Session's discount: applying it to the line items and totals, a promotion code typed on the
hosted page, and its redemption when a payment-mode session completes."""

from __future__ import annotations

from stripe_emulator.checkout.models.base import CheckoutBase
from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.store import StripeObject
from stripe_emulator.coupons.discounts import DiscountLine, discount_amounts
from stripe_emulator.coupons.models import CouponsBackend, DiscountSpec
from stripe_emulator.tax import session_taxes_apply


class CheckoutDiscounts(CheckoutBase):
    def _apply_discounts(
        self,
        session: StripeObject,
        items: list[StripeObject],
        entries: list[dict[str, str | None]],
        specs: list[DiscountSpec],
    ) -> None:
        """Each line item's ``amount_discount`` (by :func:`discount_amounts`, before tax), the session's
        ``amount_total``, ``total_details.amount_discount`` and ``discounts`` as sent."""
        lines = [DiscountLine(amount=i["amount_subtotal"], product=i["price"]["product"]) for i in items]
        amounts = discount_amounts(lines, [s.coupon for s in specs], currency=session["currency"] or "")
        for index, item in enumerate(items):
            item["amount_discount"] = sum(per_coupon[index] for per_coupon in amounts)
            item["amount_total"] = item["amount_subtotal"] - item["amount_discount"]
        discount = sum(i["amount_discount"] for i in items)
        session["amount_total"] = session["amount_subtotal"] - discount
        session["total_details"]["amount_discount"] = discount
        session["discounts"] = [
            {"coupon": e.get("coupon"), "promotion_code": e.get("promotion_code")} for e in entries
        ]
        session["_discount_entries"] = [dict(e) for e in entries]

    def checkout_session_apply_promotion_code(self, session_id: str, code: str) -> StripeObject:
        """The customer types a promotion code on the hosted page (sessions with
        ``allow_promotion_codes``)."""
        session = self.checkout_session_require(session_id)
        if session["status"] != "open":
            raise InvalidRequestError(
                f"This Checkout Session is no longer active (status {session['status']})."
            )
        if not session["allow_promotion_codes"]:
            raise InvalidRequestError(
                "This Checkout Session does not accept promotion codes.", param="promotion_code"
            )
        coupons = self.account.backend(CouponsBackend)
        found = coupons.promotion_code_list(code=code)
        promo = next((p for p in found if p["active"]), found[0] if found else None)
        if promo is None:
            raise InvalidRequestError("This code is invalid.", param="promotion_code")
        entries: list[dict[str, str | None]] = [{"coupon": None, "promotion_code": promo["id"]}]
        items = self.line_items_of(session_id)
        specs = coupons.discount_specs(
            entries,
            param="discounts",
            customer=session["customer"],
            currency=session["currency"],
            amount=session["amount_subtotal"],
        )
        self._apply_discounts(session, items, entries, specs)
        session_taxes_apply(self.account, session, items)  # taxed again, on the discounted amounts
        return session

    def _redeem(self, session: StripeObject, customer: str | None) -> None:
        """Payment mode: the session's discount is redeemed when it completes (subscription mode redeems
        it on the subscription it creates)."""
        coupons = self.account.backend(CouponsBackend)
        for entry in session.get("_discount_entries") or []:
            promo = self.store.get("promotion_code", entry.get("promotion_code") or "")
            coupon_id = promo["promotion"]["coupon"] if promo else entry.get("coupon")
            coupon = self.store.get("coupon", coupon_id or "")
            if coupon is not None:
                spec = DiscountSpec(coupon=coupon, promotion_code=promo)
                coupons.discount_create(spec, customer=customer, checkout_session=session["id"])
