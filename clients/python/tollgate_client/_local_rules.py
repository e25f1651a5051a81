"""The server's answer rules for a local snapshot's entry (`tollgate_client.local`): the check's answer
(`answer_of`), what binds a refused use and when it frees up, what a metered price bills, a spend cap's and an
account cap's answers and a credits waterfall's step and an entity's own limit — each the server's own rule
(`entitlements.selectors`, `entitlements.windows`, `entitlements.waterfall`, `entitlements.account_cap`,
`entitlements.entities`), on the server's clock."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timezone
from typing import Any

from tollgate_client.types import (
    EntitlementAccountCap,
    EntitlementCap,
    EntitlementCheck,
    EntitlementCredits,
    EntitlementEntity,
    UsageWindow,
)


def binding_of(
    entry: dict[str, Any], quantity: int, fits_period: bool, now: float
) -> tuple[str | None, int | None]:
    """What refuses `quantity` (a window, or the period) and the whole seconds until it frees up: the server's
    rule (`entitlements.windows.windows_answer`), on the server's clock `now`."""
    binding: str | None = None
    frees: float | None = None
    for window, ends in entry.get("windows") or ():
        if window.used + window.held + quantity > window.limit:
            when = ends if quantity <= window.limit else None
            if binding is None or (frees is not None and (when is None or when > frees)):
                binding, frees = window.window, when
    if not fits_period:
        period_frees = entry.get("period_end") if quantity <= (entry["limit"] or 0) else None
        if binding is None or (frees is not None and (period_frees is None or period_frees >= frees)):
            binding, frees = "period", period_frees
    if binding is None:
        return None, None
    return binding, None if frees is None else max(1, math.ceil(frees - now))


def price_billed(price: dict[str, Any] | None, quantity: int) -> int:
    """What the metered price bills for `quantity` units: the server's rule (Stripe's), per unit or by tiers."""
    if price is None:
        return 0
    if price["billing_scheme"] != "tiered":
        return int(price["unit_amount"] or 0) * quantity
    tiers = price["tiers"]
    if price["tiers_mode"] == "volume":
        for tier in tiers:
            if tier["up_to"] == "inf" or quantity <= tier["up_to"]:
                return (tier.get("unit_amount") or 0) * quantity + (tier.get("flat_amount") or 0)
        return 0
    total, below = 0, 0
    for tier in tiers:
        if quantity <= below:
            break
        top = quantity if tier["up_to"] == "inf" else min(quantity, tier["up_to"])
        total += (tier.get("unit_amount") or 0) * (top - below) + (tier.get("flat_amount") or 0)
        if tier["up_to"] == "inf":
            break
        below = tier["up_to"]
    return total


_NEVER = 10**15  # more units than any limit: the server's bound on an open-ended tier


def units_within(price: dict[str, Any], amount: int) -> int | None:
    """The units the metered price bills at most `amount` for, up to the first quantity it bills more for (None:
    it never does): the server's rule (`catalog.pricing.units_within`), each tier searched by bisection."""
    if price["billing_scheme"] != "tiered":
        unit = int(price["unit_amount"] or 0)
        return None if unit == 0 else amount // unit
    below = 0
    for tier in price["tiers"]:
        top = _NEVER if tier["up_to"] == "inf" else int(tier["up_to"])
        if price_billed(price, below + 1) > amount:
            return below
        if price_billed(price, top) <= amount:
            if top == _NEVER:
                return None
            below = top
            continue
        low, high = below + 1, top  # bills(low) fits, bills(high) does not
        while high - low > 1:
            middle = (low + high) // 2
            if price_billed(price, middle) <= amount:
                low = middle
            else:
                high = middle
        return low
    return None


def own_use(entry: dict[str, Any]) -> int:
    """A metered entry's use a price bills: used and held, less the units credits paid."""
    return int(entry.get("used") or 0) + int(entry.get("held") or 0) - int(entry.get("covered") or 0)


def account_others(
    key: str, entry: dict[str, Any], features: dict[str, dict[str, Any]]
) -> tuple[int, int | None]:
    """An entry's account cap as the other features' use leaves it: (what their prices bill, the units of its own
    use the cap allows in all — None when nothing bounds them), the server's rule (`entitlements.account_cap`)."""
    cap = entry["account_cap"]
    others = sum(
        price_billed(price, own_use(features[other]) if other in features else 0)
        for other, price in cap["prices"].items()
        if other != key
    )
    price = cap["prices"].get(key)
    past = entry.get("overage") or (entry["limit"] is None and entry["enabled"] and not entry["revoked"])
    if price is None or not past:  # only use its price bills past the plan's allowance is bounded
        return others, None
    within = units_within(price, max(int(cap["amount"]) - others, 0))
    return others, None if within is None else max(within, int(entry["limit"] or 0))


def account_cap_answer(entry: dict[str, Any], key: str, own: int) -> dict[str, Any]:
    """The account cap as the server answers it (`entitlements.account_cap.account_cap_answer`), from what the
    other features bill (`_account_others`) and the bound it puts (`_account_units`)."""
    cap = entry["account_cap"]
    billed = int(entry.get("_account_others") or 0) + price_billed(cap["prices"].get(key), own)
    units = entry.get("_account_units")
    return {
        "at_cap": cap["at_cap"],
        "set_by": cap["set_by"],
        "amount": cap["amount"],
        "currency": cap["currency"],
        "used_amount": billed,
        "left_amount": max(int(cap["amount"]) - billed, 0),
        "left_units": None if units is None else max(units - own, 0),
    }


def feature_bound(entry: dict[str, Any]) -> int | None:
    """The bound the feature's own blocking spend cap puts on its use (None without one)."""
    cap = entry.get("cap")
    return cap["limit"] if cap is not None and cap["at_cap"] == "block" else None


def cap_bound(entry: dict[str, Any]) -> int | None:
    """The tighter of the feature's own blocking cap and a blocking account cap's bound (`_account_units`)."""
    bounds = [feature_bound(entry)]
    account = entry.get("account_cap")
    if account is not None and account["at_cap"] == "block":
        bounds.append(entry.get("_account_units"))
    given = [bound for bound in bounds if bound is not None]
    return min(given) if given else None


def cap_answer(cap: dict[str, Any], limit: int | None, counted: int) -> EntitlementCap:
    """The spend cap as the server answers it (`selectors.cap_answer`)."""
    billed = price_billed(cap.get("price"), counted)
    total = cap["limit"]
    raw = {
        "at_cap": cap["at_cap"],
        "set_by": cap["set_by"],
        "units": cap.get("units"),
        "amount": cap.get("amount"),
        "currency": cap.get("currency"),
        "used_units": max(counted - int(limit or 0), 0),
        "used_amount": billed,
        "left_units": None if total is None else max(total - counted, 0),
        "left_amount": None if cap.get("amount") is None else max(int(cap["amount"]) - billed, 0),
    }
    return EntitlementCap(raw=raw, **raw)


def waterfall_step(
    entry: dict[str, Any], own: int, quantity: int
) -> tuple[dict[str, Any] | None, str | None, bool]:
    """The server's credits waterfall rule (`entitlements.waterfall.waterfall_answer`): the waterfall's credits as
    answered (None without one), the step `quantity` more would come from (None: it does not fit), whether it
    fits. `own`: the period's use with its held units, less those credits paid."""
    limit = entry["limit"]
    waterfall = entry.get("credits")
    shown: dict[str, Any] | None = None
    units = 0
    if waterfall is not None:
        cost = int(waterfall["cost"])
        balance = int(entry.get("_credits_balance") or 0)
        units = balance // cost
        covered = int(entry.get("covered") or 0)
        shown = {
            "feature": waterfall["feature"],
            "cost": cost,
            "balance": balance,
            "units": units,
            "covered": covered,
        }
    if limit is None:  # pay as you go: only a blocking account cap bounds it
        bound = cap_bound(entry)
        return (
            (shown, "allowance", True) if bound is None or own + quantity <= bound else (shown, None, False)
        )
    if own + quantity <= limit:
        return shown, "allowance", True
    if quantity - max(limit - own, 0) <= units:
        return shown, "credits", True
    if entry.get("overage"):
        bound = cap_bound(entry)
        if bound is None or own + quantity - units <= bound:
            return shown, "overage", True
    return shown, None, False


def entity_answer(
    answer: EntitlementCheck, entry: dict[str, Any], entity: str, used: int, quantity: int, now: float
) -> EntitlementCheck:
    """`answer` (the account's) judged for the entity too, the server's rule (`entitlements.entities.
    entity_apply`): `entity` is {id, feature, limit, used, remaining, windows, binding}; where `quantity` more does
    not fit the entity's own limit or one of its own windows the answer refuses it, `entity.binding` the one that
    refuses it for longest, and where the entity refuses it for longer than the account (or alone), `binding`
    "entity" and `retry_after` the seconds until that frees up (None when `quantity` is more than it ever
    allows)."""
    per_entity = entry["per_entity"]
    limit = int(per_entity["limit"])
    binding: str | None = None
    frees: float | None = None
    windows: list[dict[str, Any]] = []
    for window in (per_entity.get("windows") or {}).get(entity, ()):
        windows.append({**window, "resets_at": _iso(window["resets_at"])})
        if window["used"] + window["held"] + quantity > window["limit"]:
            when = window["resets_at"] if quantity <= window["limit"] else None
            if binding is None or (frees is not None and (when is None or when > frees)):
                binding, frees = window["window"], when
    if used + quantity > limit:
        period_frees = entry.get("period_end") if quantity <= limit else None
        if binding is None or (frees is not None and (period_frees is None or period_frees >= frees)):
            binding, frees = "period", period_frees
    own = {
        "id": entity,
        "feature": per_entity["feature"],
        "limit": limit,
        "used": used,
        "remaining": max(0, limit - used),
        "windows": windows,
        "binding": binding,
        "balance": None,
    }
    raw = {**answer.raw, "entity": own}
    fields: dict[str, Any] = {"entity": EntitlementEntity.from_dict(own)}
    if binding is not None:
        fields["allowed"] = raw["allowed"] = False
        fields["step"] = raw["step"] = None
        wait = None if frees is None else max(1, math.ceil(frees - now))
        if answer.binding is None or (
            answer.retry_after is not None and (wait is None or wait > answer.retry_after)
        ):  # the entity refuses it for longer than the account does (or alone)
            fields["binding"] = raw["binding"] = "entity"
            fields["retry_after"] = raw["retry_after"] = wait
    return dataclasses.replace(answer, raw=raw, **fields)


def entity_credits_answer(
    answer: EntitlementCheck, entry: dict[str, Any], entity: str, own: int, quantity: int
) -> EntitlementCheck:
    """`answer` (a credits feature's, the account's) judged for a use naming the entity, the server's rule
    (`entitlements.entities.entity_credits_apply`): it spends its own credits (`own`) first, then the account's,
    so `balance` is both and `entity.balance` its own; `quantity` more is allowed when they cover it (not where the
    feature is revoked)."""
    spendable = int(answer.balance or 0) + own
    shown = {
        "id": entity,
        "feature": entry["entity_credits"]["feature"],
        "limit": None,
        "used": None,
        "remaining": None,
        "windows": [],
        "binding": None,
        "balance": own,
    }
    raw = {**answer.raw, "entity": shown, "balance": spendable}
    fields: dict[str, Any] = {"entity": EntitlementEntity.from_dict(shown), "balance": spendable}
    if not entry["revoked"]:
        fields["allowed"] = raw["allowed"] = spendable >= quantity
    return dataclasses.replace(answer, raw=raw, **fields)


def account_link(features: dict[str, dict[str, Any]]) -> None:
    """Each entry under an account cap carries what the other features' prices bill now (`_account_others`) and
    the bound that leaves its own use (`_account_units`): an entry whose figures moved is replaced, its kept
    answers with it."""
    for key, entry in list(features.items()):
        if entry.get("account_cap") is None:
            continue
        others, units = account_others(key, entry, features)
        if entry.get("_account_others") != others or entry.get("_account_units", -1) != units:
            linked = {**entry, "_account_others": others, "_account_units": units}
            linked.pop("_answers", None)
            features[key] = linked


def credits_link(features: dict[str, dict[str, Any]]) -> None:
    """Each credits waterfall's entry (`credits`: the feature whose balance pays past its limit) carries that
    feature's balance now (`_credits_balance`), and its entities' own where they hold some (`_credits_entities`,
    by id: a use naming one pays from them first): an entry whose balances moved is replaced, its kept answers
    with it."""
    for key, entry in list(features.items()):
        waterfall = entry.get("credits")
        if waterfall is None:
            continue
        paying = features.get(waterfall["feature"])
        if paying is not None and paying["revoked"]:
            paying = None
        balance = int(paying.get("balance") or 0) if paying is not None else 0
        declared = paying.get("entity_credits") if paying is not None else None
        counted = entry.get("per_entity")
        owned = (
            declared["balances"]
            if declared and counted and declared["feature"] == counted["feature"]
            else None
        )
        if entry.get("_credits_balance") != balance or entry.get("_credits_entities") != owned:
            linked = {**entry, "_credits_balance": balance, "_credits_entities": owned}
            linked.pop("_answers", None)
            features[key] = linked


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()[:-6] + "Z"


def windows_of(windows: list[dict[str, Any]]) -> list[tuple[UsageWindow, float]]:
    """A snapshot's usage windows (`resets_at` in Unix seconds) as the answers' objects, each with its end."""
    return [
        (
            UsageWindow.from_dict(
                {
                    **window,
                    "resets_at": _iso(window["resets_at"]),
                }
            ),
            float(window["resets_at"]),
        )
        for window in windows
    ]


def windows_from_answer(windows: list[UsageWindow]) -> list[tuple[UsageWindow, float]]:
    """An answer's usage windows, each with its end (Unix seconds)."""
    return [
        (window, datetime.fromisoformat(window.resets_at.replace("Z", "+00:00")).timestamp())
        for window in windows
    ]


def counted_after(entry: dict[str, Any], answer: EntitlementCheck) -> dict[str, Any]:
    """The snapshot's feature entry counting what the server counts after a consume answered `answer` (the
    account's use, balance, held units and windows; an entity's use and windows, or its own credits, naming one)."""
    counted = {
        **entry,
        "used": answer.used,
        "balance": answer.balance,
        "held": answer.held,
        "windows": windows_from_answer(answer.windows),
    }
    counted.pop("_answers", None)  # the old counts' answers
    if answer.entity is None:
        return counted
    own_credits = entry.get("entity_credits")
    if own_credits is not None and answer.entity.balance is not None:
        # `balance` is what the entity may spend: its own and the account's
        counted["balance"] = int(answer.balance or 0) - answer.entity.balance
        balances = {**own_credits["balances"], answer.entity.id: answer.entity.balance}
        counted["entity_credits"] = {**own_credits, "balances": balances}
    per_entity = entry.get("per_entity")
    if per_entity is not None:
        used = {**per_entity["used"], answer.entity.id: answer.entity.used}
        own = {
            **(per_entity.get("windows") or {}),
            answer.entity.id: [
                {**window.raw, "resets_at": ends}
                for window, ends in windows_from_answer(answer.entity.windows)
            ],
        }
        counted["per_entity"] = {**per_entity, "used": used, "windows": own}
    return counted


def answer_of(feature: str, entry: dict[str, Any], quantity: int, now: float) -> EntitlementCheck:
    """What `GET /entitlements/check` answers for this feature entry (the server's rule, in the same order);
    `now`: the server's clock (usage windows end on it)."""
    kind = entry["type"]
    limit = entry["limit"]
    enabled = entry["enabled"]
    used = entry["used"]
    balance = entry["balance"]
    held = entry.get("held")
    remaining: int | None = None
    overage: str | None = None
    windows: list[UsageWindow] = []
    binding: str | None = None
    retry_after: int | None = None
    cap: EntitlementCap | None = None
    account: dict[str, Any] | None = None
    credits: dict[str, Any] | None = None
    step: str | None = None
    if kind == "metered" or kind == "allocation":
        counted = used + (held or 0)  # held units count against the limit
        past = bool(entry.get("overage"))  # the plan lets use go past the limit
        own = counted - (entry.get("covered") or 0)  # the units credits paid are not the limit's
        remaining = None if limit is None else (limit - own if past else max(limit - own, 0))
        allowed = enabled and (limit is None or past or counted + quantity <= limit)
        if kind == "metered":
            overage = "allowed" if past else "blocked"
            credits, step, fits = waterfall_step(entry, own, quantity)
            allowed = enabled and fits
            if entry.get("cap") is not None:
                cap = entry["_cap"]
            if entry.get("account_cap") is not None:
                account = account_cap_answer(entry, feature, own)
            bound = cap_bound(entry)
            # With overage, or without a limit, only a cap refuses.
            if enabled and (past or limit is None) and not fits and bound is not None:
                binding = "cap" if feature_bound(entry) == bound else "account_cap"
                retry_after = max(1, math.ceil(entry["period_end"] - now))
            spans = entry.get("windows")
            if spans:  # listed whatever refuses, a cap included (as the server lists them)
                windows = entry["_window_objects"]
            if enabled and binding is None and (spans or not allowed):
                binding, retry_after = binding_of(entry, quantity, allowed, now)
                allowed = allowed and binding is None
            step = step if allowed else None
    elif kind == "credits":
        remaining = balance
        enabled = not entry["revoked"] and balance > 0
        allowed = not entry["revoked"] and balance >= quantity
    else:
        allowed = enabled
    raw = {
        "allowed": allowed,
        "feature": feature,
        "type": kind,
        "enabled": enabled,
        "value": entry["value"],
        "limit": limit,
        "used": used,
        "remaining": remaining,
        "balance": balance,
        "held": held,
        "overage": overage,
        "cap": None,
        "account_cap": account,
        "credits": credits,
        "step": step,
        "windows": [],
        "binding": binding,
        "retry_after": retry_after,
    }
    if not windows and cap is None and credits is None and account is None:
        return EntitlementCheck(raw=raw, **raw)
    raw["windows"] = entry["_window_raws"] if windows else []
    raw["cap"] = cap.raw if cap is not None else None
    paid = EntitlementCredits(raw=credits, **credits) if credits is not None else None
    capped = EntitlementAccountCap(raw=account, **account) if account is not None else None
    fields = {"windows": windows, "cap": cap, "credits": paid, "account_cap": capped}
    return EntitlementCheck(raw=raw, **{**raw, **fields})
