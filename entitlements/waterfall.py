"""A metered answer's credits waterfall (`services.waterfall` takes the units the same way): which step `quantity`
more would come from — the period's allowance, the waterfall's credits, overage within the spend cap — and what
the credits can still pay for. Pure: the server's answers and the snapshot's local answers share it.
"""

from typing import Any

from entitlements.account_cap import cap_bound
from entitlements.snapshot import FeatureEntry


def waterfall_answer(
    key: str, entry: FeatureEntry, usage: Any, quantity: int, counted: int
) -> tuple[dict[str, Any] | None, str | None, bool]:
    """A metered answer's waterfall part: (`credits` {feature, cost, balance, units, covered} or None without a
    waterfall, the `step` `quantity` more would come from — "allowance", "credits", "overage" — or None when it
    does not fit, whether it fits). `counted`: the period's use with its held units; the limit and the cap
    are judged on it less the units credits paid (`covered`)."""
    covered = usage.get("covered", {}).get(key, 0)
    own = counted - covered
    limit = entry["limit"]
    waterfall = entry.get("credits")
    shown: dict[str, Any] | None = None
    units = 0
    if waterfall is not None:
        cost = int(waterfall["cost"])
        balance = int(usage["balance"].get(waterfall["feature"], 0))
        units = balance // cost
        shown = {
            "feature": waterfall["feature"],
            "cost": cost,
            "balance": balance,
            "units": units,
            "covered": covered,
        }
    if limit is None:  # pay as you go: only a blocking account cap bounds it (judged by the caller)
        bound = cap_bound(entry)
        return (
            (shown, "allowance", True) if bound is None or own + quantity <= bound else (shown, None, False)
        )
    if own + quantity <= limit:
        return shown, "allowance", True
    rest = quantity - max(limit - own, 0)
    if rest <= units:
        return shown, "credits", True
    if entry.get("overage"):
        bound = cap_bound(entry)
        if bound is None or own + quantity - units <= bound:
            return shown, "overage", True
    return shown, None, False


def hold_paid_held(quantity: int, used: int, covered: int) -> int:
    """Of a waterfall's hold of `quantity` units, the units credits paid that it still holds once `used` of them
    were used: its last `covered` units are the paid ones, and used units are the others first."""
    return max(min(covered, quantity - used), 0)


def hold_credits_held(quantity: int, used: int, covered: int, cost: int) -> int:
    """The credits a waterfall's hold still sets aside (`hold_paid_held`, `cost` a unit)."""
    return hold_paid_held(quantity, used, covered) * cost


def paid_within(quantity: int, covered: int, before: int, after: int) -> int:
    """Of a waterfall hold's units from the `before`-th to the `after`-th used, how many credits paid: its last
    `covered` of `quantity` units are the paid ones."""
    uncovered = quantity - covered
    return max(after - uncovered, 0) - max(before - uncovered, 0)
