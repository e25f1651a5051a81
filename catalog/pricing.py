"""What a price charges for a quantity: the one rule every amount Tollgate computes from a price follows, the same
as Stripe's (a per-unit price: quantity × unit_amount; a tiered price: graduated or volume, below)."""

from typing import Any

from catalog.models import Price

INF = "inf"


def tiers_amount(*, tiers_mode: str, tiers: list[dict[str, Any]], quantity: int) -> int:
    """Graduated: each tier's units at its unit_amount, plus the flat_amount of every tier the quantity reaches.
    Volume: every unit at the tier the whole quantity falls in, plus that tier's flat_amount.
    `tiers` are ascending with the last `up_to` "inf" (checked on the way in)."""
    if tiers_mode == Price.TiersMode.VOLUME:
        for tier in tiers:
            if tier["up_to"] == INF or quantity <= tier["up_to"]:
                return (tier.get("unit_amount") or 0) * quantity + (tier.get("flat_amount") or 0)
        raise ValueError("the last tier must be up to inf")
    total, below = 0, 0
    for tier in tiers:
        if quantity <= below:
            break  # quantity 0 reaches no tier, as at Stripe
        top = quantity if tier["up_to"] == INF else min(quantity, tier["up_to"])
        total += (tier.get("unit_amount") or 0) * (top - below) + (tier.get("flat_amount") or 0)
        if tier["up_to"] == INF:
            break
        below = tier["up_to"]
    return total


def price_amount(price: Price, quantity: int) -> int:
    """What `quantity` units of `price` cost, in minor units."""
    if price.billing_scheme == Price.BillingScheme.TIERED:
        return tiers_amount(tiers_mode=price.tiers_mode, tiers=price.tiers, quantity=quantity)
    return int(price.unit_amount or 0) * quantity


def terms_amount(terms: dict[str, Any], quantity: int) -> int:
    """`price_amount` of a price's terms as a dict (`billing_scheme`, `unit_amount`, `tiers_mode`, `tiers`), as
    entitlement snapshots carry them."""
    if terms["billing_scheme"] == Price.BillingScheme.TIERED:
        return tiers_amount(tiers_mode=terms["tiers_mode"], tiers=terms["tiers"], quantity=quantity)
    return int(terms["unit_amount"] or 0) * quantity


NEVER = 10**15  # more units than any limit (`rules.MAX_FEATURE_AMOUNT`)


def units_within(terms: dict[str, Any], amount: int) -> int | None:
    """The units the price bills at most `amount` for, up to the first quantity it bills more for (None: it never
    does). Within a tier the amount only grows with the quantity, so each tier is searched by bisection."""
    if terms["billing_scheme"] != Price.BillingScheme.TIERED:
        unit = int(terms["unit_amount"] or 0)
        return None if unit == 0 else amount // unit
    below = 0
    for tier in terms["tiers"]:
        top = NEVER if tier["up_to"] == INF else int(tier["up_to"])
        if terms_amount(terms, below + 1) > amount:
            return below
        if terms_amount(terms, top) <= amount:
            if top == NEVER:
                return None
            below = top
            continue
        low, high = below + 1, top  # amount(low) fits, amount(high) does not
        while high - low > 1:
            middle = (low + high) // 2
            if terms_amount(terms, middle) <= amount:
                low = middle
            else:
                high = middle
        return low
    return None
