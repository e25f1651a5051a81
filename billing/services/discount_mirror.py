"""The discount a Stripe subscription carries, as its mirror (`Subscription.discount`) shows it.

Events name a subscription's discounts by id only; the first time an id is seen, the subscription is read once
with `expand[]=discounts` (under the Stripe read limit) to learn its coupon and promotion code. A discount id
the read no longer finds (a stale event, the discount since removed) leaves the mirror's discount as it was:
the newer event that removed it brings that change itself.
"""

from typing import Any

from billing.models import Coupon, PromotionCode
from projects.models import Project
from stripe_gateway.gateway import gateway_for, stripe_id
from stripe_gateway.read_limit import stripe_read_allowed


def subscription_discount(
    *, project: Project, account: str, stripe_subscription: dict[str, Any], current: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The mirror's `discount` for this state of the Stripe subscription (never inside a transaction)."""
    references = stripe_subscription.get("discounts") or []
    if not references:
        return None
    wanted = stripe_id(references[0])
    if current is not None and current.get("stripe_discount_id") == wanted:
        return current
    discount = references[0] if isinstance(references[0], dict) else None
    if discount is None:
        stripe_read_allowed(account)
        found = gateway_for(project).subscription_discounts(stripe_subscription["id"])
        discount = next((d for d in found if d.get("id") == wanted), None)
    if discount is None:
        return current
    stripe_coupon = stripe_id((discount.get("source") or {}).get("coupon"))
    coupon = Coupon.objects.filter(project=project, stripe_coupon_id=stripe_coupon).first()
    promo = PromotionCode.objects.filter(
        project=project, stripe_promotion_code_id=stripe_id(discount.get("promotion_code"))
    ).first()
    return {
        "stripe_discount_id": wanted,
        "coupon": coupon.key if coupon else None,
        "promotion_code": promo.code if promo else None,
        "percent_off": float(coupon.percent_off) if coupon and coupon.percent_off is not None else None,
        "amount_off": coupon.amount_off if coupon else None,
        "currency": (coupon.currency or None) if coupon else None,
        "duration": coupon.duration if coupon else None,
        "end": discount.get("end"),
    }
