"""Proration rules and the changes they defer: which rule of its project a tenant's change follows (by its
direction: an upgrade, a downgrade or a change of billing interval), the change made at the current period's end
through a Stripe subscription schedule (`from_subscription`, then a second phase holding the change), its
release when an immediate change or a cancellation replaces it, and the pending change the schedule's events
mirror on the subscription.

Every write is keyed by the subscription, the request and the Stripe state it was decided on
(`billing.services.subscription_stripe_writes.write_key`), and each step first reads whether Stripe already
has it: a retry after a lost answer continues where the first attempt stopped (a schedule already made is
updated, phases already sent are not sent again).
"""

from typing import Any

from django.db import transaction

from billing.models import Subscription, SubscriptionItem
from billing.services.subscription_items import ItemSpec
from billing.services.subscription_stripe_writes import (
    apply_now,
    audit_state,
    stripe_state,
    subscription_gateway,
    write_key,
)
from catalog.models import Price
from catalog.pricing import price_amount
from catalog.selectors import price_for_stripe
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict
from customers.services.customers import customer_for_stripe
from projects.models import Project
from stripe_gateway.gateway import stripe_id
from stripe_gateway.schedules import (
    schedule_from_subscription,
    schedule_latest,
    schedule_release,
    schedule_retrieve,
    schedule_update,
)

UPGRADE = "upgrade"
DOWNGRADE = "downgrade"
INTERVAL_CHANGE = "interval_change"
_OPEN = ("not_started", "active")


def _licensed_total(pairs: list[tuple[Price, int]]) -> int:
    return sum(
        price_amount(price, quantity)
        for price, quantity in pairs
        if price.usage_type != Price.UsageType.METERED
    )


def held_items(subscription: Subscription) -> list[SubscriptionItem]:
    """The subscription's items with their prices, read once for `change_kind` and `takes_metered_off`."""
    return list(subscription.items.select_related("price"))


def takes_metered_off(
    subscription: Subscription,
    *,
    price: Price | None = None,
    items: list[ItemSpec] | None = None,
    rows: list[SubscriptionItem] | None = None,
) -> bool:
    """Whether a change (of the primary price, or to the list `items`) takes a metered price off the
    subscription: replaced by another, or removed. Stripe (`billing_mode` classic) bills a metered item only for
    the usage from its price's change on, so the period's usage so far under a price taken off within the period
    would be billed by nobody. `rows`: the subscription's items (`held_items`), when read already."""
    rows = held_items(subscription) if rows is None else rows
    held = [row.price for row in rows] or [subscription.price]
    metered = {held_price.pk for held_price in held if held_price.usage_type == Price.UsageType.METERED}
    if not metered:
        return False
    if items is not None:
        return bool(metered - {spec.price.pk for spec in items})
    return price is not None and subscription.price_id in metered and price.pk != subscription.price_id


def change_kind(
    subscription: Subscription,
    *,
    price: Price | None = None,
    quantity: int | None = None,
    items: list[ItemSpec] | None = None,
    rows: list[SubscriptionItem] | None = None,
) -> str | None:
    """The direction of a change of price, quantity or items: `interval_change` (another billing interval),
    `upgrade` (its licensed items cost more per period than now), else `downgrade` (cheaper, or the same price).
    None for a change of neither (a promotion code, Stripe Tax). `rows`: as `takes_metered_off`'s."""
    current = subscription.price
    if items is not None:
        new_price: Price | None = items[0].price
        rows = held_items(subscription) if rows is None else rows
        before = [(row.price, int(row.quantity or 0)) for row in rows] or [(current, subscription.quantity)]
        held = {row.price_id: int(row.quantity or 0) for row in rows}
        after = [(spec.price, int(spec.quantity or held.get(spec.price.pk) or 1)) for spec in items]
    elif price is not None or quantity is not None:
        new_price = price or current
        before = [(current, subscription.quantity)]
        after = [(new_price, quantity or subscription.quantity)]
    else:
        return None
    if new_price is not None and (new_price.interval, new_price.interval_count) != (
        current.interval,
        current.interval_count,
    ):
        return INTERVAL_CHANGE
    return UPGRADE if _licensed_total(after) > _licensed_total(before) else DOWNGRADE


def rule_of(project: Project, kind: str) -> str:
    return str(
        {
            UPGRADE: project.proration_upgrade,
            DOWNGRADE: project.proration_downgrade,
            INTERVAL_CHANGE: project.proration_interval_change,
        }[kind]
    )


def pending_change_of(*, project: Project, stripe_schedule: dict[str, Any] | None) -> dict[str, Any] | None:
    """The change a Stripe schedule holds for its next phase, as the subscription shows it: {stripe_schedule_id,
    price, quantity, items: [[price key, quantity]], effective_at}; None when it holds none (or has ended)."""
    if not stripe_schedule or stripe_schedule.get("status") not in _OPEN:
        return None
    current = stripe_schedule.get("current_phase") or {}
    phases = stripe_schedule.get("phases") or []
    following = [p for p in phases if int(p.get("start_date") or 0) >= int(current.get("end_date") or 0)]
    if not current or not following:
        return None
    phase = following[0]
    items: list[list[Any]] = []
    primary: tuple[str, int] | None = None
    for item in phase.get("items") or []:
        price = price_for_stripe(project=project, stripe_price_id=stripe_id(item.get("price")))
        key = price.key if price is not None else stripe_id(item.get("price"))
        quantity = item.get("quantity")
        items.append([key, quantity])
        if primary is None and price is not None and price.usage_type != Price.UsageType.METERED:
            primary = (key, int(quantity or 1))
    if primary is None and items:
        primary = (items[0][0], int(items[0][1] or 1))
    return {
        "stripe_schedule_id": stripe_schedule["id"],
        "price": primary[0] if primary else None,
        "quantity": primary[1] if primary else None,
        "items": items,
        "effective_at": int(phase["start_date"]),
    }


def _phase_items(phase: dict[str, Any]) -> list[dict[str, Any]]:
    """A phase's items as an update sends them back (a metered price has no quantity)."""
    items = []
    for item in phase.get("items") or []:
        entry: dict[str, Any] = {"price": stripe_id(item.get("price"))}
        if item.get("quantity") is not None:
            entry["quantity"] = int(item["quantity"])
        items.append(entry)
    return items


def _pairs(items: list[dict[str, Any]]) -> list[list[Any]]:
    pairs = [[item["price"], item.get("quantity")] for item in items]
    return sorted(pairs, key=lambda pair: (pair[0], -1 if pair[1] is None else pair[1]))


def _audited(
    subscription: Subscription, actor: Actor, reason: str, before: Subscription, after: Subscription
) -> None:
    """`subscription.change_scheduled`, with the pending change before and after besides the usual state."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="subscription.change_scheduled",
            target=subscription,
            project=subscription.project,
            reason=reason,
            before={**audit_state(before), "pending_change": before.pending_change},
            after={**audit_state(after), "pending_change": after.pending_change},
        )


def subscription_change_at_period_end(
    *,
    subscription: Subscription,
    actor: Actor,
    live: dict[str, Any],
    items: list[dict[str, Any]],
    reason: str = "",
) -> Subscription:
    """Schedules `items` (the whole list wanted: `{price, quantity?}` with Stripe price ids) for the end of the
    current period: the subscription's schedule (made `from_subscription` when it has none) gets a second phase
    with them, one period long, and is released after it (the subscription carries on with them). A second
    deferred change replaces the pending one; a change back to the items in force drops it. Audited."""
    if live.get("cancel_at_period_end") or live.get("cancel_at"):
        raise Conflict(
            "This subscription is canceled at the end of its period: there is no next period to change.",
            code="subscription_canceling",
        )
    gateway = subscription_gateway(subscription)
    state = stripe_state(live)
    schedule_id = stripe_id(live.get("schedule"))
    current_items = _pairs(
        [
            {"price": stripe_id(i.get("price")), "quantity": i.get("quantity")}
            for i in (live.get("items") or {}).get("data") or []
        ]
    )
    if _pairs(items) == current_items:
        # Back to the items in force: nothing left to change at the period's end.
        result = apply_now(subscription, subscription_pending_drop(subscription=subscription, live=live))
        result.pending_change = None
        _audited(result, actor, reason, _with_pending(subscription, live), result)
        return result
    if schedule_id:
        schedule = schedule_retrieve(gateway, schedule_id)
    else:
        schedule = _schedule_made(subscription, live, state)
    current = schedule.get("current_phase") or {}
    phases = schedule.get("phases") or []
    now_phase = next((p for p in phases if p.get("start_date") == current.get("start_date")), phases[0])
    following = [p for p in phases if int(p.get("start_date") or 0) >= int(current.get("end_date") or 0)]
    if following and _pairs(_phase_items(following[0])) == _pairs(items) and len(following) == 1:
        answer = schedule  # Stripe has it already (a retry whose first answer was lost)
    else:
        params: dict[str, Any] = {
            "end_behavior": "release",
            "proration_behavior": "none",
            "phases": [
                {
                    "items": _phase_items(now_phase),
                    "start_date": now_phase["start_date"],
                    "end_date": now_phase["end_date"],
                    "proration_behavior": "none",
                },
                {"items": items, "iterations": 1, "proration_behavior": "none"},
            ],
        }
        answer = schedule_update(
            gateway,
            schedule["id"],
            params=params,
            idem=write_key(
                subscription,
                "schedule-phases",
                params,
                {**state, "schedule": schedule["id"], "phases": [_pairs(_phase_items(p)) for p in phases]},
            ),
        )
    result = apply_now(subscription, live)
    result.pending_change = pending_change_of(project=subscription.project, stripe_schedule=answer)
    _audited(result, actor, reason, _with_pending(subscription, live), result)
    return result


def _schedule_made(subscription: Subscription, live: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """The subscription's schedule, made `from_subscription`. Its key names the newest schedule the subscription
    had (released since: a change dropped), so a deferred change after a dropped one is an operation of its own,
    never the released schedule replayed under the first one's key; a retry of either derives the same key. A
    create Stripe replays anyway answers the schedule as it is now (`schedule_from_subscription`): one released
    since is walked past, to a key derived from it, as deterministically."""
    gateway = subscription_gateway(subscription)
    sid = subscription.stripe_subscription_id
    previous = schedule_latest(gateway, customer=stripe_id(live.get("customer")), subscription_id=sid)
    if (
        previous is not None
        and previous.get("status") in _OPEN
        and stripe_id(previous.get("subscription")) == sid
    ):
        return previous  # made since `live` was read
    source: dict[str, Any] = {"from_subscription": True}
    if previous is not None:
        source["after"] = previous["id"]
    for _ in range(50):
        schedule = schedule_from_subscription(
            gateway, sid, idem=write_key(subscription, "schedule", source, state)
        )
        if schedule.get("status") in _OPEN:
            break
        source = {"from_subscription": True, "after": schedule["id"]}
    return schedule


def _with_pending(subscription: Subscription, live: dict[str, Any]) -> Subscription:
    before = apply_now(subscription, live)
    before.pending_change = subscription.pending_change
    return before


def subscription_pending_drop(*, subscription: Subscription, live: dict[str, Any]) -> dict[str, Any]:
    """Releases the subscription's schedule at Stripe (its pending change is dropped; the subscription carries
    on as it is now) and answers the subscription as Stripe has it after. Nothing to do without one (also when
    a first attempt released it and its answer was lost)."""
    schedule_id = stripe_id(live.get("schedule"))
    if not schedule_id:
        return live
    gateway = subscription_gateway(subscription)
    schedule_release(
        gateway,
        schedule_id,
        idem=write_key(subscription, "schedule-release", {"schedule": schedule_id}, stripe_state(live)),
    )
    return gateway.subscription_retrieve(subscription.stripe_subscription_id)


class ScheduleAmbiguous(Exception):
    """Two schedule events in the same second that say different things: only Stripe knows which is current."""


def schedule_apply(
    *, account: str, stripe_schedule: dict[str, Any], event_created: int, force: bool = False
) -> bool:
    """Mirrors the change a `subscription_schedule.*` event's schedule holds on its subscription (the one it
    drives, or released), unless a newer schedule event was applied already (`force`: the schedule as Stripe has
    it now, read after an ambiguous event). Returns whether it was applied. Raises ScheduleAmbiguous for an
    event as old as the last applied one that says something else."""
    customer = customer_for_stripe(
        account=account, stripe_customer_id=stripe_id(stripe_schedule.get("customer"))
    )
    stripe_subscription_id = stripe_id(stripe_schedule.get("subscription")) or stripe_id(
        stripe_schedule.get("released_subscription")
    )
    if customer is None or not stripe_subscription_id:
        return False
    subscription = (
        Subscription.objects.select_related("project")
        .filter(project=customer.project, stripe_subscription_id=stripe_subscription_id)
        .first()
    )
    if subscription is None:
        return False
    pending = pending_change_of(project=subscription.project, stripe_schedule=stripe_schedule)
    with transaction.atomic():
        rows = Subscription.objects.filter(pk=subscription.pk)
        if force:
            rows.update(pending_change=pending)
            return True
        updated = rows.filter(schedule_event_created__lt=event_created).update(
            pending_change=pending, schedule_event_created=event_created
        )
        if updated:
            return True
        current = rows.values_list("pending_change", "schedule_event_created").first()
    if current is not None and current[1] == event_created and current[0] != pending:
        raise ScheduleAmbiguous
    return False
