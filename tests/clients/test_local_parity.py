"""Randomized parity: `LocalEntitlements.check` answers exactly as the server's HTTP check, for random plans
combining usage windows, overage, a feature's spend cap, an account cap (pay as you go included), a credits
waterfall, entities (with windows of their own) and holds, after random server-side steps, at every bound (each `remaining`, `left_units`,
credits' units and window, and one past it) and at quantities the server refuses. Seeds: TOLLGATE_PARITY_SEEDS
(0-3 and 5 by default; 60 passed when it was written, 30 with the seats' own windows)."""

import json
import math
import os
import random
import time
from functools import partial
from typing import Any

import pytest
from tollgate_client import APIStatusError
from tollgate_client.local import LocalEntitlements

from billing.models import SubscriptionItem
from catalog.models import Feature
from tests.catalog import price_create, product_create
from tests.entitlements.helpers import customer, feature, hand_subscription, product, subscribe

pytestmark = pytest.mark.django_db(transaction=True)

# By default seeds 0-3 and 5, whose seats have windows of their own.
SEEDS = (
    list(range(int(os.environ["TOLLGATE_PARITY_SEEDS"])))
    if "TOLLGATE_PARITY_SEEDS" in os.environ
    else [0, 1, 2, 3, 5]
)
WINDOW_ORDER = ["minute", "hour", "day", "week"]


def _windows(rng: random.Random, limit: int | None, overage: bool) -> dict[str, int] | None:
    if rng.random() < 0.6:
        return None
    names = sorted(rng.sample(WINDOW_ORDER, rng.randint(1, 2)), key=WINDOW_ORDER.index)
    top = limit if (limit is not None and not overage) else 40
    values = sorted(rng.randint(2, max(2, top)) for _ in names)
    return dict(zip(names, values, strict=True))


def make_plan(rng: random.Random) -> dict[str, Any]:
    """A random plan description (pure data, so a seed's plan can be reported)."""
    plan: dict[str, Any] = {"features": {}, "account_cap": None, "seats": None}
    n = rng.choice([1, 1, 2])
    waterfall_used = False
    for i in range(n):
        key = f"m{i}"
        payg = rng.random() < 0.25
        spec: dict[str, Any] = {}
        price: dict[str, Any] | None = None
        if payg:
            value = None
            price = {"kind": "per_unit", "unit": rng.randint(1, 4)}
        else:
            limit = rng.randint(3, 15)
            overage = rng.random() < 0.6
            spec["limit"] = limit
            if overage:
                spec["overage"] = "allowed"
            w = _windows(rng, limit, overage)
            if w:
                spec["windows"] = w
            price_kind = rng.choice(["none", "per_unit", "graduated", "graduated"])
            if price_kind == "per_unit":
                price = {"kind": "per_unit", "unit": rng.randint(1, 4)}
            elif price_kind == "graduated":
                price = {"kind": "graduated", "free": limit, "unit": rng.randint(1, 4)}
            if overage and rng.random() < 0.6:
                at_cap = rng.choice(["block", "alert"])
                if price is not None and rng.random() < 0.5:
                    spec["cap"] = {"amount": rng.randint(1, 30), "at_cap": at_cap}
                else:
                    spec["cap"] = {"units": rng.randint(0, 8), "at_cap": at_cap}
            if rng.random() < 0.35:
                spec["credits"] = {"feature": "tokens", "cost": rng.randint(1, 3)}
                waterfall_used = True
            if rng.random() < 0.3:
                spec["per_entity"] = {"feature": "seats", "limit": rng.randint(1, limit)}
                own = (
                    _windows(rng, spec["per_entity"]["limit"], False)
                    if spec["per_entity"]["limit"] >= 2
                    else None
                )
                if own:  # the seats' own windows
                    spec["per_entity"]["windows"] = own
                plan["seats"] = rng.randint(1, 3)
            value = spec
        plan["features"][key] = {"value": value, "price": price}
    plan["tokens"] = waterfall_used or rng.random() < 0.2
    if rng.random() < 0.55 and any(f["price"] for f in plan["features"].values()):
        plan["account_cap"] = {
            "amount": rng.randint(5, 60),
            "currency": "usd",
            "at_cap": rng.choice(["block", "alert"]),
        }
    return plan


def build(project, external_id: str, plan: dict[str, Any]) -> None:
    values: dict[Feature, Any] = {}
    prices = []
    for key, spec in plan["features"].items():
        feat = feature(project, key, Feature.Type.METERED)
        values[feat] = spec["value"]
        price = spec["price"]
        if price is None:
            continue
        if price["kind"] == "per_unit":
            made = price_create(
                product_create(project, f"usage-{key}", f"Usage {key}"),
                f"p-{key}",
                price["unit"],
                interval="month",
                usage_type="metered",
                meter=key,
            )
        else:
            tiers = [
                {"up_to": price["free"], "unit_amount": 0},
                {"up_to": "inf", "unit_amount": price["unit"]},
            ]
            made = price_create(
                product_create(project, f"usage-{key}", f"Usage {key}"),
                f"p-{key}",
                None,
                interval="month",
                usage_type="metered",
                meter=key,
                billing_scheme="tiered",
                tiers_mode="graduated",
                tiers=tiers,
            )
        prices.append(made)
    if plan["tokens"]:
        feature(project, "tokens", Feature.Type.CREDITS)
    if plan["seats"]:
        values[feature(project, "seats", Feature.Type.ALLOCATION)] = plan["seats"]
    subscription = subscribe(customer(project, external_id), product(project, "plan", values))
    sold = [(subscription.price, 1)] + [(price, None) for price in prices]
    for item, (price, quantity) in enumerate(sold):
        SubscriptionItem.objects.create(
            project=project,
            subscription=subscription,
            price=price,
            product=price.product,
            quantity=quantity,
            usage_type=price.usage_type,
            stripe_item_id=f"si_for_{subscription.pk}_{item}",
        )
    hand_subscription(subscription)


def _diff(local: dict[str, Any], server: dict[str, Any], elapsed: float = 0.0) -> dict[str, Any]:
    """What differs; `retry_after` counts seconds from the moment each answer was made, so the two may differ by
    the seconds between the two calls (`elapsed`, the pair's wall time: a loaded machine stretches it) and one of
    rounding."""
    lw, sw = local.pop("retry_after", None), server.pop("retry_after", None)
    out = {
        k: {"local": local.get(k), "server": server.get(k)}
        for k in set(local) | set(server)
        if local.get(k) != server.get(k)
    }
    if (lw is None) != (sw is None) or (lw is not None and abs(lw - sw) > 1 + math.ceil(elapsed)):
        out["retry_after"] = {"local": lw, "server": sw}
    return out


def _quantities(answer: dict[str, Any], rng: random.Random) -> list[int]:
    qs = {-1, 0, 1, 1000}
    for n in (
        answer.get("remaining"),
        (answer.get("cap") or {}).get("left_units"),
        (answer.get("account_cap") or {}).get("left_units"),
        (answer.get("credits") or {}).get("units"),
        (answer.get("entity") or {}).get("remaining"),
    ):
        if isinstance(n, int):
            qs |= {max(n, 0), max(n + 1, 0)}
    for w in [*(answer.get("windows") or []), *((answer.get("entity") or {}).get("windows") or [])]:
        qs |= {w["remaining"], w["remaining"] + 1}
    if answer.get("remaining") is not None and answer.get("credits"):
        r = max(answer["remaining"], 0) + answer["credits"]["units"]
        qs |= {r, r + 1}
    return sorted(qs)


def compare(client, tollgate, user, plan, rng, seed, step, mismatches) -> None:
    features = list(plan["features"]) + (["tokens"] if plan["tokens"] else [])
    entities = [None] + (["ana", "bo"] if plan["seats"] else [])
    local = LocalEntitlements(client, push=False)
    try:
        for feat in features:
            per_entity = isinstance(plan["features"].get(feat, {}).get("value"), dict) and "per_entity" in (
                plan["features"][feat]["value"] or {}
            )
            for entity in entities:
                if entity is not None and (not per_entity or entity not in step["entities"]):
                    continue
                base = tollgate.entitlements.check(
                    customer=user, feature=feat, quantity=1, entity=entity
                ).to_dict()
                for q in _quantities(base, rng):
                    started = time.monotonic()
                    try:
                        mine = local.check(customer=user, feature=feat, quantity=q, entity=entity).to_dict()
                    except APIStatusError as exc:
                        mine = {"error": f"{exc.status} {getattr(exc, 'code', '')}"}
                    try:
                        theirs = tollgate.entitlements.check(
                            customer=user, feature=feat, quantity=q, entity=entity
                        ).to_dict()
                    except APIStatusError as exc:
                        theirs = {"error": f"{exc.status} {getattr(exc, 'code', '')}"}
                    diff = _diff(dict(mine), dict(theirs), time.monotonic() - started)
                    if diff:
                        mismatches.append(
                            {
                                "seed": seed,
                                "step": step["desc"],
                                "feature": feat,
                                "entity": entity,
                                "quantity": q,
                                "diff": diff,
                            }
                        )
    finally:
        local.close()


def _try(call):
    try:
        return call()
    except APIStatusError as exc:
        return f"refused {exc.status} {getattr(exc, 'code', '')}"


@pytest.mark.parametrize("seed", SEEDS)
def test_local_answers_match_the_server(seed, live_server, tenant_a, tollgate, stripe_emulator):
    from tollgate_client import Tollgate

    rng = random.Random(seed)
    plan = make_plan(rng)
    user = f"u-{seed}"
    build(tenant_a.project, user, plan)
    history: list[str] = []
    state = {"entities": [], "desc": "initial"}
    if plan["account_cap"]:
        history.append(
            f"account cap {plan['account_cap']}: "
            + str(
                _try(partial(tollgate.entitlements.spend_caps.set, customer=user, cap=plan["account_cap"]))
            )[:60]
        )
    if plan["seats"]:
        for seat in ["ana", "bo"][: plan["seats"]]:
            tollgate.entitlements.entities.add(customer=user, feature="seats", entity=seat)
            state["entities"].append(seat)
    mismatches: list[dict[str, Any]] = []
    metered = list(plan["features"])
    with Tollgate(tenant_a.key, live_server.url, timeout=10) as client:
        compare(client, tollgate, user, plan, rng, seed, state, mismatches)
        for n in range(7):
            feat = rng.choice(metered)
            kind = rng.choice(["consume", "consume", "consume", "hold", "grant", "cap"])
            entity = None
            if (
                state["entities"]
                and "per_entity" in (plan["features"][feat]["value"] or {})
                and rng.random() < 0.6
            ):
                entity = rng.choice(state["entities"])
            q = rng.randint(1, 8)
            if kind == "consume":
                r = _try(
                    partial(
                        tollgate.entitlements.consume,
                        id=f"c{seed}-{n}",
                        customer=user,
                        feature=feat,
                        quantity=q,
                        entity=entity,
                    )
                )
                desc = f"consume {feat} {q} entity={entity} -> {getattr(r, 'allowed', r)}"
            elif kind == "hold":
                r = _try(
                    partial(
                        tollgate.entitlements.holds.create,
                        id=f"h{seed}-{n}",
                        customer=user,
                        feature=feat,
                        quantity=q,
                        entity=entity,
                    )
                )
                desc = f"hold {feat} {q} entity={entity} -> {getattr(r, 'allowed', getattr(r, 'status', r))}"
            elif kind == "grant":
                if plan["tokens"] and rng.random() < 0.7:
                    g = rng.randint(1, 10)
                    _try(
                        partial(
                            tollgate.entitlements.grants.create,
                            customer=user,
                            feature="tokens",
                            value=g,
                            reason="t",
                        )
                    )
                    desc = f"grant tokens {g}"
                else:
                    g = rng.randint(1, 5)
                    _try(
                        partial(
                            tollgate.entitlements.grants.create,
                            customer=user,
                            feature=feat,
                            value=g,
                            reason="t",
                        )
                    )
                    desc = f"grant {feat} +{g}"
            else:
                if rng.random() < 0.5 or not plan["account_cap"]:
                    cap = rng.choice([{"units": rng.randint(0, 10)}, {"amount": rng.randint(0, 40)}])
                    cap["at_cap"] = rng.choice(["block", "alert"])
                    r = _try(
                        partial(tollgate.entitlements.spend_caps.set, customer=user, feature=feat, cap=cap)
                    )
                    desc = f"feature cap {feat} {cap} -> {str(r)[:40] if isinstance(r, str) else 'set'}"
                else:
                    cap = {
                        "amount": rng.randint(0, 60),
                        "currency": "usd",
                        "at_cap": rng.choice(["block", "alert"]),
                    }
                    r = _try(partial(tollgate.entitlements.spend_caps.set, customer=user, cap=cap))
                    desc = f"account cap {cap} -> {str(r)[:40] if isinstance(r, str) else 'set'}"
            history.append(desc)
            state["desc"] = f"#{n} {desc}"
            compare(client, tollgate, user, plan, rng, seed, state, mismatches)
    assert not mismatches, json.dumps(
        {"plan": plan, "history": history, "mismatches": mismatches[:5]}, indent=1
    )
