"""The discount computation, in one place: how much each coupon takes off each line of an invoice (or a
Checkout Session), on the amounts before tax.

Stripe's rules as emulated here:
- only ``discountable`` lines are discounted, and a coupon with ``applies_to.products`` only the lines of
  those products;
- ``percent_off``: each eligible line loses ``amount × percent_off / 100``, rounded half up to the minor unit
  per line (Stripe computes discounts per line item and rounds each to the currency's minor unit; we round
  half up, as the emulator's price amounts do);
- ``amount_off``: the amount (capped at what the eligible lines are worth) is spread over the eligible lines
  in proportion to their amounts, rounded down per line, and the cents left over go to the largest lines
  first, so the parts always add up to exactly the coupon's amount;
- several discounts apply one after the other, each on what the previous ones left of every line.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


@dataclass(frozen=True)
class DiscountLine:
    """What the computation needs of a line: its amount before discounts, its product, and whether it may
    be discounted at all (prorations may not be, see ``discountable``)."""

    amount: int
    product: str | None
    discountable: bool = True


def _eligible(coupon: dict[str, Any], line: DiscountLine) -> bool:
    if not line.discountable or line.amount <= 0:
        return False
    applies_to = coupon.get("applies_to")
    if applies_to and applies_to.get("products"):
        return line.product in applies_to["products"]
    return True


def discount_amounts(
    lines: list[DiscountLine], coupons: list[dict[str, Any]], *, currency: str
) -> list[list[int]]:
    """For each coupon (in order), the amount it takes off each line: ``result[c][l]``. An ``amount_off``
    coupon in another currency takes nothing (Stripe refuses applying one, see ``CouponsBackend``)."""
    remaining = [line.amount for line in lines]
    result: list[list[int]] = []
    for coupon in coupons:
        taken = [0] * len(lines)
        eligible = [i for i, line in enumerate(lines) if _eligible(coupon, line) and remaining[i] > 0]
        if coupon.get("percent_off") is not None:
            percent = Decimal(str(coupon["percent_off"]))
            for i in eligible:
                share = (Decimal(remaining[i]) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
                taken[i] = min(int(share), remaining[i])
        elif coupon.get("amount_off") is not None and coupon.get("currency") == currency:
            base = sum(remaining[i] for i in eligible)
            off = min(int(coupon["amount_off"]), base)
            if base > 0:
                for i in eligible:
                    taken[i] = off * remaining[i] // base
                left = off - sum(taken)
                for i in sorted(eligible, key=lambda i: -remaining[i]):
                    if left <= 0:
                        break
                    if taken[i] < remaining[i]:
                        taken[i] += 1
                        left -= 1
        for i in range(len(lines)):
            remaining[i] -= taken[i]
        result.append(taken)
    return result
