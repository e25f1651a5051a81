"""The usage part of a customer's answers (`resolve_usage`), read from PostgreSQL; the cache in
`entitlements.cache` holds its result beside the structure's (`resolver`).

Per feature key: what was used of each metered feature in the structure's period and the units of each
allocation in use (held units included: every limit sees them), each credit balance (lots not voided and not
expired; held credits are already out of it), and the units held (`services.holds`) of each. Every recompute and
every uncached answer reads them: they are compiled once per connection (`entitlements.statements`).
"""

from datetime import UTC, datetime
from typing import Any

from catalog.models import Feature
from entitlements import statements
from entitlements.snapshot import StructureSnapshot, UsageSnapshot, judged_at
from entitlements.waterfall import hold_credits_held
from entitlements.windows import window_bounds


def resolve_usage(*, customer_id: str | None, structure: StructureSnapshot, now: datetime) -> UsageSnapshot:
    """Used per metered feature in the structure's period, allocations in use, credit balances, units held (at
    the customer's test clock's time when it is on one: its lots expire only as the clock moves)."""
    clock = "clock_time" in structure
    now = judged_at(structure, now)
    used: dict[str, int] = {}
    in_use: dict[str, int] = {}
    balance: dict[str, int] = {}
    held: dict[str, int] = {}
    covered: dict[str, int] = {}
    valid_until: float | None = None
    counted_windows: dict[str, dict[str, list[Any]]] = {}
    features = structure["features"]
    by_id = {entry["id"]: key for key, entry in features.items()}
    metered = {key: entry for key, entry in features.items() if entry["type"] == Feature.Type.METERED}
    if customer_id is not None:
        if metered:
            starts = sorted({datetime.fromtimestamp(e["period_start"], UTC) for e in metered.values()})
            rows = statements.USED.rows(
                customer_id=customer_id, feature_ids=[e["id"] for e in metered.values()], starts=starts
            )
            for feature_id, period_start, amount, units_held, units_covered in rows:
                key = by_id[feature_id]
                if period_start.timestamp() == metered[key]["period_start"]:
                    used[key] = amount
                    if units_held:
                        held[key] = units_held
                    if units_covered:
                        covered[key] = units_covered
            windowed = {e["id"]: key for key, e in metered.items() if "windows" in e}
            if windowed:
                windows = _windows_read(customer_id, windowed, now.timestamp())
                if windows:
                    counted_windows = windows
                ends = [
                    window_bounds(name, now.timestamp())[1]
                    for key in windowed.values()
                    for name, _ in metered[key]["windows"]
                ]
                if not clock:  # a standing clock's windows never pass
                    valid_until = min(ends) if valid_until is None else min(valid_until, *ends)
        if any(e["type"] == Feature.Type.ALLOCATION for e in features.values()):
            for feature_id, amount, units_held in statements.IN_USE.rows(customer_id=customer_id):
                if feature_id in by_id:
                    in_use[by_id[feature_id]] = amount
                    if units_held:
                        held[by_id[feature_id]] = units_held
        credits = [e["id"] for e in features.values() if e["type"] == Feature.Type.CREDITS]
        if credits:
            for feature_id, total, next_expiry in statements.BALANCES.rows(customer_id=customer_id, now=now):
                if feature_id in by_id:
                    balance[by_id[feature_id]] = int(total)
                    if next_expiry is not None and not clock:
                        expiry = next_expiry.timestamp()
                        valid_until = expiry if valid_until is None else min(valid_until, expiry)
            for feature_id, paid_with, quantity, spent, units, cost in statements.HELD.rows(
                customer_id=customer_id, feature_ids=credits
            ):
                if paid_with is not None and paid_with in by_id:  # a credits waterfall's hold
                    key, amount = by_id[paid_with], hold_credits_held(quantity, spent, units, cost or 0)
                else:
                    key, amount = by_id[feature_id], quantity - spent
                held[key] = held.get(key, 0) + amount
    usage: UsageSnapshot = {
        "customer_id": customer_id,
        "used": used,
        "in_use": in_use,
        "balance": balance,
        "held": held,
        "valid_until": valid_until,
    }
    if counted_windows:
        usage["windows"] = counted_windows
    if covered:
        usage["covered"] = covered
    return usage


def _windows_read(customer_id: str, windowed: dict[str, str], now: float) -> dict[str, dict[str, list[Any]]]:
    """{feature key: {window: [start, used, held]}} of the counters whose window is the current one."""
    counted: dict[str, dict[str, list[Any]]] = {}
    for feature_id, name, start, amount, units_held in statements.WINDOWS.rows(
        customer_id=customer_id, feature_ids=sorted(windowed)
    ):
        begins = start.timestamp()
        if feature_id in windowed and begins == window_bounds(name, now)[0]:
            counted.setdefault(windowed[feature_id], {})[name] = [begins, int(amount), int(units_held)]
    return counted
