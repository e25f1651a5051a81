"""Discounts on invoices: which of a subscription's discounts an invoice takes, and the amounts they take
off its lines (computed by :func:`~stripe_emulator.coupons.discounts.discount_amounts` on the amounts
before tax)."""

from __future__ import annotations

from stripe_emulator.core.account import Account
from stripe_emulator.core.store import StripeObject
from stripe_emulator.coupons.discounts import DiscountLine, discount_amounts
from stripe_emulator.coupons.models import CouponsBackend


def subscription_discounts_for(account: Account, sub: StripeObject, invoice_id: str, at: int) -> list[str]:
    """The discounts of ``sub`` that apply to its invoice ``invoice_id`` made at ``at``. A ``once``
    discount is spent by it; discounts that no longer apply (a spent ``once``, an ended ``repeating``)
    leave the subscription, as at Stripe."""
    backend = account.backend(CouponsBackend)
    applied: list[str] = []
    for discount_id in sub.get("discounts") or []:
        discount = account.store.get("discount", discount_id)
        if discount is None:
            continue
        if backend.discount_applies(discount, invoice_id=invoice_id, at=at):
            applied.append(discount_id)
            if backend.coupon_of(discount).get("duration") == "once":
                discount["_used_by"] = invoice_id
    if applied != list(sub.get("discounts") or []):
        sub["discounts"] = list(applied)
    return applied


def apply_to_invoice(account: Account, invoice: StripeObject) -> int:
    """Sets each line's ``discount_amounts`` and the invoice's ``total_discount_amounts`` from its
    ``discounts``; returns the total taken off."""
    backend = account.backend(CouponsBackend)
    discount_ids = list(invoice.get("discounts") or [])
    discounts = [account.store.get("discount", d) for d in discount_ids]
    coupons = [backend.coupon_of(d) if d is not None else {} for d in discounts]
    lines = invoice["lines"]["data"]
    inputs = [
        DiscountLine(
            amount=int(line["amount"]),
            product=((line.get("pricing") or {}).get("price_details") or {}).get("product"),
            discountable=bool(line.get("discountable", True)),
        )
        for line in lines
    ]
    amounts = discount_amounts(inputs, coupons, currency=invoice["currency"])
    for index, line in enumerate(lines):
        line_amounts = (
            [{"amount": amounts[c][index], "discount": d} for c, d in enumerate(discount_ids)]
            if inputs[index].discountable
            else []
        )
        line["discount_amounts"] = line_amounts
        stored = account.store.get("line_item", line["id"])
        if stored is not None:
            stored["discount_amounts"] = [dict(a) for a in line_amounts]
    invoice["total_discount_amounts"] = [
        {"amount": sum(amounts[c]), "discount": d} for c, d in enumerate(discount_ids)
    ]
    return sum(sum(per_line) for per_line in amounts)
