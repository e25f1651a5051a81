"""What the subscription a subscription-mode Checkout Session creates will charge after today: the hosted page
states it, so it is computed by the functions its renewal invoices are computed by — the price amounts
(:func:`~stripe_emulator.products.models.price_amount`, already the items' ``amount_subtotal``), the discount
split (:func:`~stripe_emulator.coupons.discounts.discount_amounts`) and the per-line tax
(:func:`~stripe_emulator.tax.tax_amount`) — under the rules the invoices follow: a ``once`` coupon is spent by
the subscription's first invoice (today's, or the trial's $0 one), a ``repeating`` one applies to invoices
before its ``end`` (``duration_in_months`` after the subscription starts), a ``forever`` one to every invoice;
one-time items are billed only today and metered ones by usage."""

from __future__ import annotations

from dataclasses import dataclass

from stripe_emulator.checkout.models.base import CheckoutBase
from stripe_emulator.core.store import StripeObject
from stripe_emulator.coupons.discounts import DiscountLine, discount_amounts
from stripe_emulator.products.models import is_metered
from stripe_emulator.subscriptions.periods import DAY, add_interval
from stripe_emulator.tax import rule_for, session_tax_country, tax_amount


@dataclass(frozen=True)
class Renewal:
    """``times`` renewals in a row (``None``: every one from then on) each charging ``amount`` — after the
    discounts that apply then and the tax (unless ``taxed`` is false: automatic tax still needs the
    customer's country)."""

    amount: int
    times: int | None
    taxed: bool


class CheckoutRenewals(CheckoutBase):
    def checkout_session_renewals(self, session: StripeObject) -> list[Renewal]:
        """The charges after today of the subscription ``session`` would create, in order (empty outside
        subscription mode or without a licensed recurring item). With a trial the first is the one at its
        end."""
        if session["mode"] != "subscription":
            return []
        items = [
            i
            for i in self.line_items_of(session["id"])
            if i["price"].get("recurring") and not is_metered(i["price"])
        ]
        if not items:
            return []
        recurring = items[0]["price"]["recurring"]
        interval, count = recurring["interval"], int(recurring.get("interval_count") or 1)
        now = self.now()
        trial = (session.get("_subscription_data") or {}).get("trial_period_days")
        first = now + int(trial) * DAY if trial else add_interval(now, interval, count)
        # (coupon, end): a repeating coupon ends duration_in_months after the subscription starts (today).
        coupons = [
            (coupon, add_interval(now, "month", 1, int(coupon["duration_in_months"])))
            if coupon["duration"] == "repeating"
            else (coupon, None)
            for coupon in self._session_coupons(session)
            if coupon["duration"] != "once"
        ]
        taxed = not session["automatic_tax"]["enabled"] or session["automatic_tax"]["status"] == "complete"
        renewals: list[Renewal] = []
        times = 0
        while True:
            at = add_interval(first, interval, count, times)
            applying = [coupon for coupon, end in coupons if end is None or at < end]
            amount = self._renewal_amount(session, items, applying)
            if renewals and renewals[-1].amount == amount:
                renewals[-1] = Renewal(amount, (renewals[-1].times or 0) + 1, taxed)
            else:
                renewals.append(Renewal(amount, 1, taxed))
            times += 1
            if len(applying) == sum(1 for _, end in coupons if end is None):
                break  # only coupons that never end are left: every later renewal charges the same
        renewals[-1] = Renewal(renewals[-1].amount, None, taxed)
        return renewals

    def _renewal_amount(
        self, session: StripeObject, items: list[StripeObject], coupons: list[StripeObject]
    ) -> int:
        """One renewal invoice's total: each line's amount less its discounts, plus its exclusive tax."""
        lines = [DiscountLine(amount=int(i["amount_subtotal"]), product=i["price"]["product"]) for i in items]
        taken = discount_amounts(lines, coupons, currency=session["currency"] or "")
        country = session_tax_country(self.account, session) if session["automatic_tax"]["enabled"] else None
        total = 0
        for index, (item, line) in enumerate(zip(items, lines, strict=True)):
            taxable = line.amount - sum(per_coupon[index] for per_coupon in taken)
            inclusive = item["price"].get("tax_behavior") == "inclusive"
            tax = 0
            if country is not None and not inclusive:
                tax = tax_amount(taxable, percentage=rule_for(country).percentage, inclusive=False)
            total += taxable + tax
        return total

    def _session_coupons(self, session: StripeObject) -> list[StripeObject]:
        """The coupons of the session's discount (given, or a promotion code's)."""
        coupons = []
        for entry in session.get("_discount_entries") or []:
            promo = self.store.get("promotion_code", entry.get("promotion_code") or "")
            coupon_id = promo["promotion"]["coupon"] if promo else entry.get("coupon")
            coupon = self.store.get("coupon", coupon_id or "")
            if coupon is not None:
                coupons.append(coupon)
        return coupons
