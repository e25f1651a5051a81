"""A version move's prices (#52 point 3): a version freezes the Stripe prices it sells (`ProductVersion.prices`),
so moving a subscription to a version whose Stripe price for one of its items is another moves that item to it —
at Stripe first, then the version here (`version_moves`), so a run that stops between the two is finished by the
next: Stripe's subscription already has the prices (read before writing: nothing sent twice) and the version
moves once under its lock.

When and how, by the project's proration rule for the direction (`Project.proration_upgrade` / `_downgrade`:
an upgrade when the version's licensed prices cost more for the subscription's quantities than the version it is
on): now with prorations, now without, or at the period's end — the subscription's schedule gets a next phase with
the new prices (`subscription_schedules`), and the version follows then. A move asked `period_end`, and a move that
reprices a metered item (Stripe would bill the period's usage before it to nobody), is always at the period's
end. Each Stripe write carries an idempotency key of the subscription, the request and the Stripe
state it was decided on (`write_key`). A preview reads Stripe's invoice preview of that very update.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from billing.models import Subscription
from billing.services.invoices import invoice_lines
from billing.services.subscription_schedules import (
    DOWNGRADE,
    UPGRADE,
    rule_of,
    subscription_change_at_period_end,
)
from billing.services.subscription_stripe_writes import (
    apply_now,
    audited,
    stripe_state,
    subscription_gateway,
    write_key,
)
from catalog.models import Price, Product, ProductVersion
from catalog.pricing import terms_amount
from catalog.selectors import product_prices_by_stripe_price
from core.actors import Actor
from projects.models import Project
from stripe_gateway.gateway import from_timestamp, stripe_id

PERIOD_END = Project.ProrationRule.PERIOD_END


@dataclass
class PriceMove:
    """One subscription item moved to the version's Stripe price."""

    price: str  # the price's key
    item: str  # Stripe's subscription item
    before: str  # the Stripe price it is on
    after: str  # the version's
    quantity: int | None  # None: metered


@dataclass
class PricesPlan:
    """What a move does at Stripe: the items' price moves, the direction, and the rule that applies."""

    moves: list[PriceMove]
    change: str  # upgrade or downgrade
    rule: str  # now_prorate, now_no_proration or period_end
    live: dict[str, Any] = field(default_factory=dict)


def _frozen(product: Product, numbers: set[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """Each version's frozen prices, by price key."""
    rows = ProductVersion.objects.filter(product=product, number__in=numbers).values_list("number", "prices")
    return {number: {price["key"]: price for price in prices} for number, prices in rows}


def _amount(terms: dict[str, Any] | None, quantity: int) -> int:
    if terms is None:
        return 0
    return terms_amount(
        {
            "billing_scheme": terms.get("billing_scheme") or Price.BillingScheme.PER_UNIT,
            "unit_amount": terms.get("unit_amount"),
            "tiers_mode": terms.get("tiers_mode"),
            "tiers": terms.get("tiers"),
        },
        quantity,
    )


def prices_plan(
    *, subscription: Subscription, product: Product, from_version: int, to_version: int, when: str
) -> PricesPlan | None:
    """The Stripe side of moving `subscription` from `from_version` to `to_version` (read on Stripe's
    subscription): None when its items are on the version's Stripe prices already (or the version froze none)."""
    frozen = _frozen(product, {from_version, to_version})
    target = frozen.get(to_version, {})
    if not any(price.get("stripe_price_id") for price in target.values()):
        return None
    keys = {
        stripe_price_id: price.key
        for stripe_price_id, price in product_prices_by_stripe_price(product).items()
    }
    live = subscription_gateway(subscription).subscription_retrieve(subscription.stripe_subscription_id)
    moves = []
    for item in (live.get("items") or {}).get("data") or []:
        on = stripe_id(item.get("price"))
        key = keys.get(on)
        wanted = (target.get(key) or {}).get("stripe_price_id") if key else None
        if key and wanted and wanted != on:
            metered = ((item.get("price") or {}).get("recurring") or {}).get("usage_type") == "metered"
            moves.append(
                PriceMove(key, item["id"], on, wanted, None if metered else item.get("quantity") or 1)
            )
    if not moves:
        return None
    before = frozen.get(from_version, {})
    licensed = [move for move in moves if move.quantity is not None]
    was = sum(_amount(before.get(move.price), move.quantity or 1) for move in licensed)
    will = sum(_amount(target.get(move.price), move.quantity or 1) for move in licensed)
    change = UPGRADE if will > was else DOWNGRADE
    # A metered item moved to another price within the period would bill only the usage from the move on: Stripe
    # bills the usage before it to nobody ("Update prices mid-cycle", billing_mode classic). So a move that
    # reprices a metered item waits for the period's end, whatever the project's rule: the period's usage is
    # billed whole at the price it was recorded under.
    metered = any(move.quantity is None for move in moves)
    rule = PERIOD_END if when == "period_end" or metered else rule_of(subscription.project, change)
    return PricesPlan(moves, change, rule, live)


def _update_params(plan: PricesPlan) -> dict[str, Any]:
    return {
        "items": [
            {"id": move.item, "price": move.after, **({"quantity": move.quantity} if move.quantity else {})}
            for move in plan.moves
        ],
        "proration_behavior": "none"
        if plan.rule == Project.ProrationRule.NOW_NO_PRORATION
        else "create_prorations",
    }


def _next_items(plan: PricesPlan) -> list[dict[str, Any]]:
    """Every item of the subscription as the next phase is to have it: the moved ones on their new prices."""
    moved = {move.item: move.after for move in plan.moves}
    items = []
    for item in (plan.live.get("items") or {}).get("data") or []:
        metered = ((item.get("price") or {}).get("recurring") or {}).get("usage_type") == "metered"
        price = moved.get(item["id"], stripe_id(item.get("price")))
        items.append({"price": price, **({} if metered else {"quantity": item.get("quantity") or 1})})
    return items


def prices_move(*, subscription: Subscription, actor: Actor, plan: PricesPlan, reason: str) -> None:
    """Moves the items to the version's Stripe prices: now (prorated or not, as the rule says), or as the next
    phase of the subscription's schedule. Stripe's answer updates the mirror; audited as a change."""
    if plan.rule == PERIOD_END:
        subscription_change_at_period_end(
            subscription=subscription, actor=actor, live=plan.live, items=_next_items(plan), reason=reason
        )
        return
    params = {**_update_params(plan), "payment_behavior": "allow_incomplete"}
    answer = subscription_gateway(subscription).subscription_update(
        subscription.stripe_subscription_id,
        params=params,
        idem=write_key(subscription, "version-move", params, stripe_state(plan.live)),
    )
    result = apply_now(subscription, answer)
    audited(result, "subscription.changed", actor, reason, apply_now(subscription, plan.live), result)


def plan_period_end(plan: PricesPlan) -> datetime | None:
    """The subscription's current period end as Stripe's subscription says it (read for the plan): a move at the
    period's end takes effect then, when the schedule's next phase moves the prices, even while the mirror still
    waits for the events of a renewal."""
    return _period_end(plan.live)


def live_period_end(subscription: Subscription) -> datetime | None:
    """The end of the period Stripe's subscription is in, read now: where a move at the period's end that moves
    no price takes effect (the mirror's end may have passed while a renewal's events are on their way)."""
    return _period_end(
        subscription_gateway(subscription).subscription_retrieve(subscription.stripe_subscription_id)
    )


def _period_end(live: dict[str, Any]) -> datetime | None:
    item = ((live.get("items") or {}).get("data") or [{}])[0]
    return from_timestamp(item.get("current_period_end"))


def prices_preview(*, subscription: Subscription, plan: PricesPlan) -> dict[str, Any]:
    """What the move would invoice, from Stripe's invoice preview of that very update: the next invoice, its
    prorations and the renewal at the new prices (nothing when it waits for the period's end: `effective_at`)."""
    if plan.rule == PERIOD_END:
        return {
            "amount_due": 0,
            "total": 0,
            "currency": subscription.price.currency,
            "lines": [],
            "effective_at": plan_period_end(plan),
        }
    update = _update_params(plan)
    preview = subscription_gateway(subscription).invoice_preview(
        params={
            "customer": stripe_id(plan.live.get("customer")),
            "subscription": subscription.stripe_subscription_id,
            "subscription_details": {
                "items": update["items"],
                "proration_behavior": update["proration_behavior"],
            },
        }
    )
    return {
        "amount_due": preview["amount_due"],
        "total": int(preview.get("total") or 0),
        "currency": preview["currency"],
        "lines": invoice_lines(preview),
        "effective_at": None,
    }


def prices_pending_drop(
    *, subscription: Subscription, actor: Actor, product: Product, version: int, pending: int
) -> None:
    """A move scheduled to version `pending` canceled (moved back to `version`, the one it is on): the price
    change its schedule holds for the period's end is dropped, when it holds that one."""
    plan = prices_plan(
        subscription=subscription,
        product=product,
        from_version=version,
        to_version=pending,
        when="period_end",
    )
    if plan is None or not stripe_id(plan.live.get("schedule")):
        return
    unchanged = PricesPlan([], plan.change, plan.rule, plan.live)
    subscription_change_at_period_end(
        subscription=subscription,
        actor=actor,
        live=plan.live,
        items=_next_items(unchanged),
        reason=f"the move to version {pending} canceled",
    )
