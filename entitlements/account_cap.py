"""A customer's account cap: one spend cap in money across their metered features (`SpendCap` without a feature,
`catalog.rules.account_cap_parse`). What their metered prices in the cap's currency bill together for the period
(each on its feature's use less the units credits paid, held units included, as a feature's own money cap counts
it) may reach `amount`; past it, use past a feature's limit is refused (`block`) or goes on and is announced once
a period (`alert`). Units within a feature's limit are its plan's allowance: the account cap never refuses them.

`attach.caps_attach` puts the cap on each metered entry whose use may go past its limit, with the terms of every
metered price it sums (`prices`, by feature key). Pure: the server's answers and its locked judgement
(`services.account_caps`) share these rules.
"""

from typing import Any

from catalog.pricing import terms_amount, units_within
from entitlements.snapshot import FeatureEntry


def account_billed(cap: dict[str, Any], usage: Any, leave_out: str | None = None) -> int:
    """What the cap's metered prices bill together for the period's use in `usage` (but `leave_out`'s)."""
    covered = usage.get("covered", {})
    return sum(
        terms_amount(terms, usage["used"].get(key, 0) - covered.get(key, 0))
        for key, terms in cap["prices"].items()
        if key != leave_out
    )


def billed_past_limit(entry: FeatureEntry) -> bool:
    """Whether a metered feature's use may be billed past what its plan includes: its overage is allowed, or it
    has no limit (pay as you go: its metered price bills every unit). Only such use an account cap bounds."""
    return bool(entry.get("overage")) or (
        entry.get("limit") is None and bool(entry.get("enabled")) and not entry.get("revoked")
    )


def account_units(entry: FeatureEntry, key: str, usage: Any) -> int | None:
    """The units of `key`'s own use (less the units credits paid) the account cap allows in all, whatever it does
    at the cap: as many as its price bills within what the other features leave, and never fewer than the
    limit (none without one). None: nothing bounds them (no cap, no price of the cap's currency, a price that
    never bills more, or use that never passes the limit)."""
    cap = entry.get("account_cap")
    if cap is None or not billed_past_limit(entry) or key not in cap["prices"]:
        return None
    left = max(int(cap["amount"]) - account_billed(cap, usage, leave_out=key), 0)
    within = units_within(cap["prices"][key], left)
    return None if within is None else max(within, int(entry["limit"] or 0))


def account_limit(entry: FeatureEntry, key: str, usage: Any) -> int | None:
    """The bound a blocking account cap puts on `key`'s own use (`account_units`), None when it does not block."""
    cap = entry.get("account_cap")
    return account_units(entry, key, usage) if cap is not None and cap["at_cap"] == "block" else None


def feature_cap_bound(entry: FeatureEntry) -> int | None:
    """The bound the feature's own blocking spend cap puts on its own use (`cap.limit`), None without one."""
    cap = entry.get("cap")
    return cap["limit"] if cap is not None and cap["at_cap"] == "block" else None


def cap_bound(entry: FeatureEntry) -> int | None:
    """The most a metered feature's own use may reach past its limit: the tighter of its blocking spend cap
    (`feature_cap_bound`) and the blocking account cap's bound the caller judged (`account_limit`); None: no
    bound."""
    bounds = [bound for bound in (feature_cap_bound(entry), entry.get("account_limit")) if bound is not None]
    return min(bounds) if bounds else None


def account_cap_answer(entry: FeatureEntry, key: str, usage: Any, own: int) -> dict[str, Any] | None:
    """The account cap as a metered answer shows it: its `amount`, `currency`, `at_cap` and `set_by`, what the
    metered prices bill together so far (`used_amount`) and what is left (`left_amount`), and the units of this
    feature that still fit (`left_units`; null when nothing bounds them). `own`: the feature's use less the units
    credits paid."""
    cap = entry.get("account_cap")
    if cap is None:
        return None
    billed = account_billed(cap, usage)
    units = account_units(entry, key, usage)
    return {
        "at_cap": cap["at_cap"],
        "set_by": cap["set_by"],
        "amount": cap["amount"],
        "currency": cap["currency"],
        "used_amount": billed,
        "left_amount": max(int(cap["amount"]) - billed, 0),
        "left_units": None if units is None else max(units - own, 0),
    }
