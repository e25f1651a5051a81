"""Tenant-requested changes: price or quantity, the whole list of items, Stripe Tax on or off, sent to Stripe
with idempotency keys derived from the subscription, the request and the Stripe state they were decided on,
and audited (`billing.services.subscription_stripe_writes`). Upgrades and changes of billing interval are paid
before they apply. Checked first by `billing.services.subscription_change_checks`; previewed by
`billing.services.subscription_preview`; cancel and resume are `billing.services.subscription_cancel`.
"""

from typing import Any

from billing.models import Subscription
from billing.services.discounts import subscription_discount_params
from billing.services.meter_reports import meter_usage_settle
from billing.services.subscription_change_checks import (
    adding_products,
    check_change,
    check_items,
    check_one_interval,
    check_one_interval_live,
    check_taxable,
)
from billing.services.subscription_items import ItemSpec
from billing.services.subscription_mirror import subscription_items_resolve
from billing.services.subscription_schedules import (
    INTERVAL_CHANGE,
    change_kind,
    held_items,
    rule_of,
    subscription_change_at_period_end,
    subscription_pending_drop,
    takes_metered_off,
)
from billing.services.subscription_stripe_writes import (
    apply_now,
    audited,
    primary_state,
    stripe_state,
    subscription_gateway,
    write_key,
)
from catalog.models import Price
from catalog.pricing import price_amount
from core.actors import Actor
from core.errors import Conflict, InvalidRequest
from projects.models import Project
from stripe_gateway.gateway import stripe_id


def _changes_interval(subscription: Subscription, price: Price | None) -> bool:
    """Whether the change bills at another interval (monthly ↔ yearly, or another interval count)."""
    current = subscription.price
    return price is not None and (price.interval, price.interval_count) != (
        current.interval,
        current.interval_count,
    )


def _charged_now(subscription: Subscription, price: Price | None, quantity: int | None) -> bool:
    """Whether a change is an upgrade whose payment must succeed before it applies (`pending_if_incomplete`):
    a dearer price at the same interval, or any change of billing interval — Stripe restarts the period at the
    change and charges the new one in full at once (yearly → monthly too: amounts per different intervals are
    not compared)."""
    if price is None:
        return False
    if _changes_interval(subscription, price):
        return True
    return price_amount(price, quantity or subscription.quantity) > price_amount(
        subscription.price, subscription.quantity
    )


def items_update(
    subscription: Subscription, live: dict[str, Any], items: list[ItemSpec]
) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """Stripe's `items` update that turns the live subscription's items into `items` (the full list wanted),
    and the items (price, quantity) it leaves. A live item whose price is wanted keeps its Stripe item; else
    one of the same product takes the new price (a replace on the same item); the others wanted are added, the
    rest deleted. The quantity is always sent (the live one kept when not given); never for a metered price."""
    live_items = (live.get("items") or {}).get("data") or []
    catalog = {
        item["id"]: price
        for item, price in subscription_items_resolve(project=subscription.project, stripe_subscription=live)
    }
    unmatched = list(live_items)
    matched: dict[int, dict[str, Any]] = {}

    def same_price(item: dict[str, Any], spec: ItemSpec) -> bool:
        return catalog.get(item["id"]) is not None and catalog[item["id"]].pk == spec.price.pk

    def same_product(item: dict[str, Any], spec: ItemSpec) -> bool:
        return catalog.get(item["id"]) is not None and catalog[item["id"]].product_id == spec.price.product_id

    for same in (same_price, same_product):
        for index, spec in enumerate(items):
            if index in matched:
                continue
            found = next((item for item in unmatched if same(item, spec)), None)
            if found is not None:
                matched[index] = found
                unmatched.remove(found)
    update: list[dict[str, Any]] = []
    result: list[list[Any]] = []
    for index, spec in enumerate(items):
        item = matched.get(index)
        entry: dict[str, Any] = {"price": spec.price.stripe_price_id}
        if item is not None:
            entry = {"id": item["id"], **entry}
        if not spec.metered:
            kept = item.get("quantity") if item is not None else None
            entry["quantity"] = spec.quantity or kept or 1
        update.append(entry)
        result.append([spec.price.stripe_price_id, entry.get("quantity")])
    update += [{"id": item["id"], "deleted": True} for item in unmatched]
    return update, result


def _quantity_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"quantity": item["quantity"]} if item.get("quantity") is not None else {}


def _licensed_total(pairs: list[tuple[Price, int]]) -> int:
    return sum(
        price_amount(price, quantity)
        for price, quantity in pairs
        if price.usage_type != Price.UsageType.METERED
    )


def change_rule(
    subscription: Subscription,
    *,
    price: Price | None,
    quantity: int | None,
    items: list[ItemSpec] | None,
    proration_behavior: str | None,
) -> tuple[str | None, str]:
    """The project's proration rule a change follows (by its direction, `subscription_schedules.change_kind`;
    None for a change of no price, quantity or items) and the rule applied: a `proration_behavior` the request
    gives applies the change now with it, whatever the rule (`requested`); a change that takes a metered price
    off (`takes_metered_off`) waits for the period's end whatever either says."""
    changing = price is not None or quantity is not None or items is not None
    rows = held_items(subscription) if changing else []  # read once for both
    kind = change_kind(subscription, price=price, quantity=quantity, items=items, rows=rows)
    if kind is None:
        return None, Project.ProrationRule.NOW_PRORATE
    if kind != INTERVAL_CHANGE and takes_metered_off(subscription, price=price, items=items, rows=rows):
        # Taken off now, the period's usage so far under that metered price would be billed by nobody: the change
        # waits for the period's end, whatever the rule or the request (another interval bills it as it restarts).
        return kind, Project.ProrationRule.PERIOD_END
    if proration_behavior is not None:
        return kind, "requested"
    return kind, rule_of(subscription.project, kind)


def subscription_change(
    *,
    subscription: Subscription,
    actor: Actor,
    price: Price | None = None,
    quantity: int | None = None,
    items: list[ItemSpec] | None = None,
    proration_behavior: str | None = None,
    payment_behavior: str | None = None,
    reason: str = "",
    promotion_code: str | None = None,
    automatic_tax: bool | None = None,
) -> Subscription:
    """Changes price and/or quantity at Stripe (the quantity not given is kept: Stripe is always sent both),
    or, with `items`, the whole list of items (see `items_update`), and/or applies a `promotion_code` (checked
    first: 400 `promotion_code_invalid`). Upgrades, and every change of billing interval (Stripe restarts the
    period and invoices it now), default to `pending_if_incomplete`: a failed payment changes nothing. A change
    Stripe already has (a retry whose first answer was lost) is not sent again. `automatic_tax` turns Stripe
    Tax on or off first (the change's invoice is taxed as asked), once everything is checked. Audited.

    The project's proration rule for the change's direction decides when and how (`change_rule`): now with
    prorations (`create_prorations`), now without (`none`), or at the period's end (a schedule's next phase,
    `billing.services.subscription_schedules`); an immediate change of price, quantity or items drops a change
    pending at the period's end first."""
    kind, rule = change_rule(
        subscription, price=price, quantity=quantity, items=items, proration_behavior=proration_behavior
    )
    if rule == Project.ProrationRule.PERIOD_END and promotion_code:
        raise InvalidRequest(
            "This change takes effect at the end of the period (the project's proration rule): apply a "
            "promotion_code in a change of its own.",
            code="parameter_conflict",
            param="promotion_code",
        )
    if proration_behavior is None:
        proration_behavior = "none" if rule == Project.ProrationRule.NOW_NO_PRORATION else "create_prorations"
    deferred = rule == Project.ProrationRule.PERIOD_END
    # An immediate change of price, quantity or items drops a pending one first (its schedule released, read
    # on Stripe's subscription: the mirror may lag), once everything is checked: else the schedule's next phase
    # would undo this change at the period's end.
    drop = kind is not None and not deferred
    if items is not None:
        return _items_change(
            subscription=subscription,
            actor=actor,
            items=items,
            proration_behavior=proration_behavior,
            payment_behavior=payment_behavior,
            reason=reason,
            promotion_code=promotion_code,
            automatic_tax=automatic_tax,
            deferred=deferred,
            drop=drop,
        )
    check_change(subscription, price)
    check_one_interval(subscription, price)
    if automatic_tax:
        check_taxable(subscription, price, None)
    specs = [ItemSpec(price=price, quantity=quantity)] if price is not None else []
    with adding_products(subscription, specs, ["price"] * len(specs)):
        return _price_change(
            subscription=subscription,
            actor=actor,
            price=price,
            quantity=quantity,
            proration_behavior=proration_behavior,
            payment_behavior=payment_behavior,
            reason=reason,
            promotion_code=promotion_code,
            automatic_tax=automatic_tax,
            deferred=deferred,
            drop=drop,
        )


def _price_change(
    *,
    subscription: Subscription,
    actor: Actor,
    price: Price | None,
    quantity: int | None,
    proration_behavior: str,
    payment_behavior: str | None,
    reason: str,
    promotion_code: str | None,
    automatic_tax: bool | None,
    deferred: bool = False,
    drop: bool = False,
) -> Subscription:
    discount = subscription_discount_params(
        project=subscription.project,
        promotion_code=promotion_code,
        customer_external_id=subscription.customer.external_id,
        currency=subscription.price.currency,
    )
    gateway = subscription_gateway(subscription)
    live = gateway.subscription_retrieve(subscription.stripe_subscription_id)
    item_id, live_price, live_quantity = primary_state(subscription, live)
    check_one_interval_live(live, item_id, price)
    if drop:
        live = subscription_pending_drop(subscription=subscription, live=live)
    state = stripe_state(live)
    if automatic_tax is not None:
        subscription = _automatic_tax_write(subscription, actor, automatic_tax, reason, live)
    target = [item_id, price.stripe_price_id if price else live_price, quantity or live_quantity or 1]
    if deferred:
        # The whole list wanted for the next phase: every item as it is, the primary one changed.
        wanted = [
            # A metered price takes no quantity (Stripe refuses one).
            {
                "price": target[1],
                **({} if price and price.usage_type == Price.UsageType.METERED else {"quantity": target[2]}),
            }
            if item.get("id") == item_id
            else {"price": stripe_id(item.get("price")), **_quantity_of(item)}
            for item in (live.get("items") or {}).get("data") or []
        ]
        return subscription_change_at_period_end(
            subscription=subscription, actor=actor, live=live, items=wanted, reason=reason
        )
    if not discount and target in ([item_id, live_price, live_quantity], *state["pending"]):
        answer = live  # Stripe already has it (or holds it as the pending update of an unpaid upgrade)
    else:
        upgrade = _charged_now(subscription, price, quantity)
        params: dict[str, Any] = {
            "items": [{"id": item_id, "price": target[1], "quantity": target[2]}],
            "proration_behavior": proration_behavior,
            "payment_behavior": payment_behavior
            or ("pending_if_incomplete" if upgrade else "allow_incomplete"),
            **discount,
            # The new discount comes back whole: the mirror needs no second read of Stripe to learn its coupon.
            **({"expand": ["discounts"]} if discount else {}),
        }
        if _changes_interval(subscription, price):
            meter_usage_settle(subscription=subscription)  # Stripe starts the new period on this second
        answer = gateway.subscription_update(
            subscription.stripe_subscription_id,
            params=params,
            idem=write_key(subscription, "change", params, state),
        )
    result = apply_now(subscription, answer)
    audited(result, "subscription.changed", actor, reason, apply_now(subscription, live), result)
    return result


def subscription_automatic_tax_set(
    *, subscription: Subscription, actor: Actor, enabled: bool, reason: str = ""
) -> Subscription:
    """Turns Stripe Tax on or off for a subscription's next invoices (`automatic_tax[enabled]`). Its prices need
    a tax behavior and Stripe a customer address (a 400 from Stripe otherwise: nothing changes). Audited."""
    if subscription.status in Subscription.ENDED_STATUSES:
        raise Conflict("This subscription has ended.", code="subscription_ended")
    if enabled:
        check_taxable(subscription, None, None)
    live = subscription_gateway(subscription).subscription_retrieve(subscription.stripe_subscription_id)
    return _automatic_tax_write(subscription, actor, enabled, reason, live)


def _automatic_tax_write(
    subscription: Subscription, actor: Actor, enabled: bool, reason: str, live: dict[str, Any]
) -> Subscription:
    """Sends `automatic_tax[enabled]` unless Stripe's subscription (`live`) has it already; audited. A write of
    its own, never with an item change: Stripe's pending updates (`pending_if_incomplete`) take items only."""
    if bool((live.get("automatic_tax") or {}).get("enabled")) == enabled:
        answer = live
    else:
        params: dict[str, Any] = {"automatic_tax": {"enabled": enabled}}
        answer = subscription_gateway(subscription).subscription_update(
            subscription.stripe_subscription_id,
            params=params,
            idem=write_key(subscription, "automatic-tax", params, stripe_state(live)),
        )
    result = apply_now(subscription, answer)
    audited(result, "subscription.changed", actor, reason, apply_now(subscription, live), result)
    return result


def _items_change(
    *,
    subscription: Subscription,
    actor: Actor,
    items: list[ItemSpec],
    proration_behavior: str,
    payment_behavior: str | None,
    reason: str,
    promotion_code: str | None,
    automatic_tax: bool | None,
    deferred: bool = False,
    drop: bool = False,
) -> Subscription:
    check_items(subscription, items)
    if automatic_tax:
        check_taxable(subscription, None, items)
    with adding_products(subscription, items, [f"items[{index}].price" for index in range(len(items))]):
        return _items_write(
            subscription=subscription,
            actor=actor,
            items=items,
            proration_behavior=proration_behavior,
            payment_behavior=payment_behavior,
            reason=reason,
            promotion_code=promotion_code,
            automatic_tax=automatic_tax,
            deferred=deferred,
            drop=drop,
        )


def _items_write(
    *,
    subscription: Subscription,
    actor: Actor,
    items: list[ItemSpec],
    proration_behavior: str,
    payment_behavior: str | None,
    reason: str,
    promotion_code: str | None,
    automatic_tax: bool | None,
    deferred: bool = False,
    drop: bool = False,
) -> Subscription:
    discount = subscription_discount_params(
        project=subscription.project,
        promotion_code=promotion_code,
        customer_external_id=subscription.customer.external_id,
        currency=subscription.price.currency,
    )
    gateway = subscription_gateway(subscription)
    live = gateway.subscription_retrieve(subscription.stripe_subscription_id)
    if drop:
        live = subscription_pending_drop(subscription=subscription, live=live)
    state = stripe_state(live)
    if automatic_tax is not None:
        subscription = _automatic_tax_write(subscription, actor, automatic_tax, reason, live)
    update, target = items_update(subscription, live, items)
    if deferred:
        wanted = [
            {"price": entry["price"], **({"quantity": entry["quantity"]} if "quantity" in entry else {})}
            for entry in update
            if not entry.get("deleted")
        ]
        return subscription_change_at_period_end(
            subscription=subscription, actor=actor, live=live, items=wanted, reason=reason
        )
    have = sorted([price, quantity] for _, price, quantity in state["items"])
    pending = sorted([price, quantity] for _, price, quantity in state["pending"])
    if not discount and sorted(target) in (have, pending):
        answer = live  # Stripe already has it (or holds it as the pending update of an unpaid upgrade)
    else:
        before = [
            (price, int(item.get("quantity") or 0))
            for item, price in subscription_items_resolve(
                project=subscription.project, stripe_subscription=live
            )
        ]
        after = [(spec.price, int(quantity or 0)) for spec, (_, quantity) in zip(items, target, strict=True)]
        # Dearer, or at another interval (Stripe restarts the period and charges it now): paid before it applies.
        restarts = _changes_interval(subscription, items[0].price)
        upgrade = _licensed_total(after) > _licensed_total(before) or restarts
        params: dict[str, Any] = {
            "items": update,
            "proration_behavior": proration_behavior,
            "payment_behavior": payment_behavior
            or ("pending_if_incomplete" if upgrade else "allow_incomplete"),
            **discount,
            # The new discount comes back whole: the mirror needs no second read of Stripe to learn its coupon.
            **({"expand": ["discounts"]} if discount else {}),
        }
        if restarts:
            meter_usage_settle(subscription=subscription)  # Stripe starts the new period on this second
        answer = gateway.subscription_update(
            subscription.stripe_subscription_id,
            params=params,
            idem=write_key(subscription, "items", params, state),
        )
    result = apply_now(subscription, answer)
    audited(result, "subscription.changed", actor, reason, apply_now(subscription, live), result)
    return result
