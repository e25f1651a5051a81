"""The account cap's judgement of a use (`entitlements.account_cap`), inside the use's transaction: the cap's row
is locked before any counter (then credit lots, as every use locks them), so the uses of all the features it sums
— consumes, holds and leases, recorded usage — are judged one after the other, each on what the others bill once
committed. Only a customer with an account cap pays for the lock; theirs skip the one-statement consume.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from catalog.pricing import terms_amount
from customers.models import Customer
from entitlements import resolver
from entitlements.account_cap import account_billed, account_limit
from entitlements.models import SpendCap, UsageCounter
from entitlements.services.counters import crossing_insert
from entitlements.snapshot import FeatureEntry, StructureSnapshot


@dataclass(frozen=True)
class AccountJudged:
    """An account cap as a use was judged under its lock: the cap (its row's amount, currency and at_cap), what
    the other features' metered prices bill, and the terms of the used feature's (None: it bills nothing)."""

    cap_id: str
    cap: dict[str, Any]
    others: int
    terms: dict[str, Any] | None


def account_cap_judge(
    *, customer_id: str, structure: StructureSnapshot, key: str, entry: FeatureEntry
) -> tuple[FeatureEntry, AccountJudged | None]:
    """Locks the customer's account cap (when `entry` has one) and reads what the other features it sums used
    this period: (the entry to judge the use on — with the bound a blocking cap puts on its own use,
    `account_limit` —, the judgement for `account_cap_reached`). A cap removed since the structure was read
    judges nothing."""
    if "account_cap" not in entry:
        return entry, None
    judged = entry.copy()
    cap = _locked(customer_id, entry["account_cap"])
    if cap is None:
        del judged["account_cap"]
        return judged, None
    judged["account_cap"] = cap
    usage = _used(customer_id, structure, cap, leave_out=key)
    bound = account_limit(judged, key, usage)
    if bound is not None:
        judged["account_limit"] = bound
    others = account_billed(cap, usage, leave_out=key)
    return judged, AccountJudged(cap["id"], cap, others, cap["prices"].get(key))


def account_caps_lock(
    *, uses: dict[str, tuple[StructureSnapshot, str]]
) -> dict[str, tuple[dict[str, Any], dict[str, dict[str, int]]]]:
    """Recorded usage (never refused) of customers with an account cap, `uses` {customer id: (structure, a used
    feature's key)}: their caps locked in id order, before any counter, with the use of the features they sum
    before it — {customer id: (cap, usage)} for `account_caps_reached`."""
    locked: dict[str, tuple[dict[str, Any], dict[str, dict[str, int]]]] = {}
    ordered = sorted(uses.items(), key=lambda use: use[1][0]["features"][use[1][1]]["account_cap"]["id"])
    for customer_id, (structure, key) in ordered:
        cap = _locked(customer_id, structure["features"][key]["account_cap"])
        if cap is not None:
            locked[customer_id] = (cap, _used(customer_id, structure, cap))
    return locked


def account_caps_reached(
    *,
    locked: dict[str, tuple[dict[str, Any], dict[str, dict[str, int]]]],
    uses: dict[str, tuple[StructureSnapshot, str]],
    external_ids: dict[str, str],
    in_order: dict[str, list[tuple[str, int, int]]],
) -> list[dict[str, Any]]:
    """After recorded usage (`account_caps_lock`): the `usage.cap_reached` of each account cap it reached
    (`_reached`), naming the feature whose use took what the prices bill together to the cap's amount, and its
    use then: the customer's events of this period (`in_order`: (feature key, quantity, units credits paid)) are
    added to the use before, in the batch's order, until one reaches it."""
    reached = []
    for customer_id, (cap, before) in sorted(locked.items()):
        structure, key = uses[customer_id]
        usage = _used(customer_id, structure, cap)
        billed_before = account_billed(cap, before)
        walked = {"used": dict(before["used"]), "covered": dict(before["covered"])}
        for used_key, quantity, covered in in_order.get(customer_id, ()):
            was = account_billed(cap, walked)
            walked["used"][used_key] = walked["used"].get(used_key, 0) + quantity
            walked["covered"][used_key] = walked["covered"].get(used_key, 0) + covered
            if was < int(cap["amount"]) <= account_billed(cap, walked):
                key, usage, billed_before = used_key, walked, was
                break
        own = usage["used"].get(key, 0) - usage["covered"].get(key, 0)
        judged = AccountJudged(
            cap["id"], cap, account_billed(cap, usage, leave_out=key), cap["prices"].get(key)
        )
        crossed = _reached(
            external_ids[customer_id], key, structure["features"][key], judged, billed_before, own
        )
        if crossed is not None:
            reached.append(crossed)
    return reached


def _locked(customer_id: str, cap: dict[str, Any]) -> dict[str, Any] | None:
    """The account cap locked (`SELECT … FOR UPDATE`), as its row says now (amount, currency, at_cap), with the
    prices the structure found in its currency; None when it was removed. A plan's cap (`set_by: "plan"`) has no
    row: the customer's row is locked instead, and their own cap, if one was set since the structure was read,
    is locked and judged on (`services.spend_caps` sets one under the customer's row lock)."""
    if cap.get("set_by") == "plan":
        project_id = (
            Customer.objects.select_for_update()
            .filter(pk=customer_id)
            .values_list("project_id", flat=True)
            .first()
        )
        own = _own_locked(customer_id, cap)
        return own if own is not None else {**cap, "project_id": project_id}
    return _own_locked(customer_id, cap, pk=cap["id"])


def _own_locked(customer_id: str, cap: dict[str, Any], pk: str | None = None) -> dict[str, Any] | None:
    """The customer's own account cap (`pk`, else whichever they have) locked, with the prices the structure found
    in its currency; None without one."""
    mine = SpendCap.objects.filter(customer_id=customer_id, feature__isnull=True)
    row = (mine if pk is None else mine.filter(pk=pk)).select_for_update().values_list("pk", "cap").first()
    if row is None:
        return None
    prices = {k: terms for k, terms in cap["prices"].items() if terms["currency"] == row[1]["currency"]}
    return {**cap, **row[1], "id": row[0], "set_by": "customer", "prices": prices}


def _used(
    customer_id: str, structure: StructureSnapshot, cap: dict[str, Any], leave_out: str | None = None
) -> dict[str, dict[str, int]]:
    """{"used": …, "covered": …} this period of the features the cap sums (but `leave_out`), as committed."""
    features = structure["features"]
    wanted = {
        features[k]["id"]: (k, features[k]["period_start"])
        for k in cap["prices"]
        if k != leave_out and k in features and "period_start" in features[k]
    }
    usage: dict[str, dict[str, int]] = {"used": {}, "covered": {}}
    if wanted:
        starts = sorted({datetime.fromtimestamp(start, UTC) for _, start in wanted.values()})
        for feature_id, period_start, used, covered in UsageCounter.objects.filter(
            customer_id=customer_id, feature_id__in=sorted(wanted), period_start__in=starts
        ).values_list("feature_id", "period_start", "used", "covered"):
            key, start = wanted[feature_id]
            if period_start.timestamp() == start:
                usage["used"][key], usage["covered"][key] = used, covered
    return usage


def account_cap_reached(
    *,
    external_id: str,
    key: str,
    entry: FeatureEntry,
    judged: AccountJudged | None,
    before: int,
    after: int,
) -> dict[str, Any] | None:
    """The `usage.cap_reached` (`scope: "account"`) object when the use took what the metered prices bill
    together from below the account cap's amount to it or past it (`before`, `after`: the feature's own use, less
    the units credits paid), once a period; None otherwise. `services.usage` announces it."""
    if judged is None:
        return None
    billed = judged.others + (terms_amount(judged.terms, before) if judged.terms is not None else 0)
    return _reached(external_id, key, entry, judged, billed, after)


def _reached(
    external_id: str,
    key: str,
    entry: FeatureEntry,
    judged: AccountJudged,
    billed_before: int,
    after: int,
) -> dict[str, Any] | None:
    """The account cap's `usage.cap_reached` object when what its prices bill went from `billed_before` to
    reaching its amount (`after`: the used feature's own use now), once a period: the cap's row remembers the
    period it was reached in (`reached_period`), under its lock."""
    if "period_start" not in entry:
        return None
    amount = int(judged.cap["amount"])
    billed = judged.others + (terms_amount(judged.terms, after) if judged.terms is not None else 0)
    # A plan's cap may be declared (or come back, the customer's own removed) below what the customer bills
    # already: the first use judged past it announces it then. A customer's own is never set below.
    plan = judged.cap.get("set_by") == "plan"
    if not (billed_before < amount <= billed or (plan and amount <= billed)):
        return None
    period_start = datetime.fromtimestamp(entry["period_start"], UTC)
    if judged.cap.get("set_by") == "plan":  # no row of its own: remembered as a crossing of its first feature
        first = crossing_insert(
            judged.cap["project_id"], judged.cap_id, judged.cap["anchor"], period_start, "account_cap"
        )
    else:
        first = bool(
            SpendCap.objects.filter(pk=judged.cap_id)
            .exclude(reached_period=period_start)
            .update(reached_period=period_start)
        )
    if not first:
        return None
    return {
        "customer": external_id,
        "feature": key,
        "scope": "account",
        "at_cap": judged.cap["at_cap"],
        "units": None,
        "amount": amount,
        "currency": judged.cap["currency"],
        "cap_limit": None,
        "used": after,
        "amount_billed": billed,
        "period_start": resolver.iso_epoch(entry.get("period_start")),
        "period_end": resolver.iso_epoch(entry.get("period_end")),
    }
