"""Tenant-requested changes: change price or quantity, cancel and resume, sent to Stripe with idempotency keys
derived from the subscription, the request and the Stripe state they were decided on, and audited. The mirror
itself only changes through Stripe's events; the answer is rendered from Stripe's reply.
"""

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction

from billing.discounts.mirror import subscription_discount
from billing.discounts.services import subscription_discount_params
from billing.models import Subscription
from billing.representations import SubscriptionOutput
from billing.subscriptions.invoices import invoice_lines
from billing.subscriptions.items import ItemSpec, already_subscribed_check, customer_subscribing
from billing.subscriptions.mirror import (
    _subscription_fields,
    primary_item,
    subscription_items_resolve,
    subscription_items_unsaved,
)
from catalog.models import Price
from catalog.pricing import price_amount
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidRequest
from core.idempotency import Operation
from stripe_gateway.gateway import StripeGateway, gateway_for, idempotency_key, stripe_account_of, stripe_id


def _gateway(subscription: Subscription) -> StripeGateway:
    return gateway_for(subscription.project)


def _apply_now(subscription: Subscription, stripe_subscription: dict[str, Any]) -> Subscription:
    """The subscription as Stripe's answer says it is now — NOT saved. The mirror changes only through Stripe's
    events, applied in their order: saving the answer here would let events older than it (still in flight)
    be applied after it and revert it. The caller renders this copy (its items as `items_answer`), so the
    response already shows Stripe's answer, and the webhooks that follow bring the mirror to the same state."""
    items = subscription_items_resolve(project=subscription.project, stripe_subscription=stripe_subscription)
    answer = Subscription.objects.select_related("customer", "price", "product", "project").get(
        pk=subscription.pk
    )
    if not items:  # none of Stripe's prices is in the catalog: the mirror's own state is all there is
        answer.items_answer = list(answer.items.select_related("price", "product"))  # type: ignore[attr-defined]
        return answer
    item, price = primary_item(items)
    for name, value in _subscription_fields(stripe_subscription, price, item).items():
        setattr(answer, name, value)
    answer.price = price
    answer.product = price.product
    answer.discount = subscription_discount(
        project=subscription.project,
        account=stripe_account_of(subscription.project),
        stripe_subscription=stripe_subscription,
        current=answer.discount,
    )
    answer.items_answer = subscription_items_unsaved(answer, items)  # type: ignore[attr-defined]
    return answer


def _stripe_state(stripe_subscription: dict[str, Any]) -> dict[str, Any]:
    """What a tenant's change is decided on at Stripe: status, scheduled end, pause, items, pending update."""
    items = (stripe_subscription.get("items") or {}).get("data") or []
    pending = (stripe_subscription.get("pending_update") or {}).get("subscription_items") or []
    return {
        "status": stripe_subscription.get("status"),
        "cancel_at_period_end": bool(stripe_subscription.get("cancel_at_period_end")),
        "paused": bool(stripe_subscription.get("pause_collection")),
        "items": [[i.get("id"), stripe_id(i.get("price")), i.get("quantity")] for i in items],
        "pending": [[i.get("id"), stripe_id(i.get("price")), i.get("quantity")] for i in pending],
    }


def _primary_state(subscription: Subscription, live: dict[str, Any]) -> list[Any]:
    """[Stripe item id, Stripe price id, quantity] of the item a `price`/`quantity` change is about: the primary
    one (the first licensed item of the catalog; Stripe's first when none is ours)."""
    resolved = subscription_items_resolve(project=subscription.project, stripe_subscription=live)
    items = (live.get("items") or {}).get("data") or [{}]
    item = primary_item(resolved)[0] if resolved else items[0]
    return [item.get("id"), stripe_id(item.get("price")), item.get("quantity")]


def _write_key(
    subscription: Subscription, operation: str, params: dict[str, Any], state: dict[str, Any]
) -> str:
    """The Stripe idempotency key of a tenant's write: our subscription, the operation, the request and the
    Stripe state it was decided on. A retry of the same request on the same state (the first one never reached
    Stripe, or its answer was lost on the way) carries the same key, so Stripe applies it once."""
    digest = hashlib.sha256(json.dumps([params, state], sort_keys=True).encode()).hexdigest()[:32]
    return idempotency_key("subscription", subscription.pk, operation, digest)


def audit_state(subscription: Subscription) -> dict[str, Any]:
    """What an audit row records of a subscription (as Stripe's answer has it when it carries one)."""
    return {
        "price": subscription.price.key,
        "quantity": subscription.quantity,
        "items": [[item["price"], item["quantity"]] for item in SubscriptionOutput.items_of(subscription)],
        "status": subscription.status,
        "cancel_at_period_end": subscription.cancel_at_period_end,
    }


def _audited(
    subscription: Subscription,
    action: str,
    actor: Actor,
    reason: str,
    before: Subscription,
    after: Subscription,
) -> None:
    state = audit_state
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=action,
            target=subscription,
            project=subscription.project,
            reason=reason,
            before=state(before),
            after=state(after),
        )


def _check_change(subscription: Subscription, price: Price | None) -> None:
    if subscription.status in (Subscription.Status.CANCELED, Subscription.Status.INCOMPLETE_EXPIRED):
        raise Conflict("This subscription has ended.", code="subscription_ended")
    if price is not None:
        if not price.is_recurring or not price.active or not price.stripe_price_id:
            raise InvalidRequest(
                "price must be an active recurring price.", code="price_not_recurring", param="price"
            )
        if price.currency != subscription.price.currency:
            raise Conflict("The new price is in another currency.", code="currency_mismatch", param="price")


def _interval_mismatch(price: Price, others: list[str]) -> InvalidRequest:
    return InvalidRequest(
        f"Stripe bills every item of a subscription on one interval, and this subscription also has "
        f"{', '.join(others)} on its current one: `price` changes only its main item. Change every item at "
        f"once with `items` (for a yearly switch, the yearly price of each).",
        code="interval_mismatch",
        param="price",
    )


def _check_one_interval(subscription: Subscription, price: Price | None) -> None:
    """A `price` change replaces the primary item only; the subscription's other items keep their interval, and
    Stripe refuses a subscription of mixed intervals. Refused from the mirror before any Stripe call."""
    if price is None:
        return
    rows = list(subscription.items.select_related("price"))
    if not rows:
        return
    primary = next((row for row in rows if row.usage_type != Price.UsageType.METERED), rows[0])
    others = [
        row.price.key
        for row in rows
        if row.pk != primary.pk
        and (row.price.interval, row.price.interval_count) != (price.interval, price.interval_count)
    ]
    if others:
        raise _interval_mismatch(price, others)


def _check_one_interval_live(live: dict[str, Any], item_id: str, price: Price | None) -> None:
    """The same check on Stripe's items (the mirror may lag a change made at Stripe), before any write: every
    item but the one the change replaces, whether its price is in the catalog or not."""
    if price is None:
        return
    others = []
    for item in (live.get("items") or {}).get("data") or []:
        recurring = (item.get("price") or {}).get("recurring") or {}
        if item.get("id") == item_id or not recurring:
            continue
        if (recurring.get("interval"), int(recurring.get("interval_count") or 1)) != (
            price.interval,
            price.interval_count or 1,
        ):
            found = item.get("price") or {}
            others.append(str(found.get("lookup_key") or found.get("id")))
    if others:
        raise _interval_mismatch(price, others)


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


def _new_products_check(subscription: Subscription, specs: list[ItemSpec], params: list[str]) -> bool:
    """409 `already_subscribed` when a product the change adds (one the subscription does not hold yet) is on
    another live subscription of the customer. Returns whether the change adds a product."""
    held = {subscription.product_id, *subscription.items.values_list("product_id", flat=True)}
    added = [
        (spec, param) for spec, param in zip(specs, params, strict=True) if spec.price.product_id not in held
    ]
    if added:
        already_subscribed_check(
            customer=subscription.customer,
            specs=[spec for spec, _ in added],
            params=[param for _, param in added],
            exclude=subscription,
        )
    return bool(added)


@contextmanager
def _adding_products(subscription: Subscription, specs: list[ItemSpec], params: list[str]) -> Iterator[None]:
    """Around a change's Stripe write: when it adds a product, `already_subscribed` is checked, then checked
    again and the write made while the customer's subscription writes are serialized (`customer_subscribing`),
    as `POST /subscriptions` does."""
    if not _new_products_check(subscription, specs, params):
        yield
        return
    with customer_subscribing(subscription.customer):
        _new_products_check(subscription, specs, params)
        yield


def _check_items(subscription: Subscription, items: list[ItemSpec]) -> None:
    if subscription.status in (Subscription.Status.CANCELED, Subscription.Status.INCOMPLETE_EXPIRED):
        raise Conflict("This subscription has ended.", code="subscription_ended")
    if items[0].price.currency != subscription.price.currency:
        raise Conflict(
            "The new items are in another currency.", code="currency_mismatch", param="items[0].price"
        )


def _items_update(
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


def _licensed_total(pairs: list[tuple[Price, int]]) -> int:
    return sum(
        price_amount(price, quantity)
        for price, quantity in pairs
        if price.usage_type != Price.UsageType.METERED
    )


def subscription_preview(
    *,
    subscription: Subscription,
    price: Price | None = None,
    quantity: int | None = None,
    items: list[ItemSpec] | None = None,
    proration_behavior: str = "create_prorations",
    promotion_code: str | None = None,
    automatic_tax: bool | None = None,
) -> dict[str, Any]:
    """What `subscription_change` with the same input would invoice, from Stripe's invoice preview of that very
    update (its prorations, or the next renewal with them), with the discount of `promotion_code` (checked as
    the change checks it) and Stripe Tax on or off as `automatic_tax` asks: `{amount_due, currency, subtotal,
    discount, tax, total, lines}`. Reads only — nothing is written or redeemed at Stripe or here, so nothing is
    audited."""
    if items is not None:
        _check_items(subscription, items)
        _new_products_check(subscription, items, [f"items[{index}].price" for index in range(len(items))])
    else:
        _check_change(subscription, price)
        _check_one_interval(subscription, price)
        if price is not None:
            _new_products_check(subscription, [ItemSpec(price=price, quantity=quantity)], ["price"])
    if automatic_tax:
        _check_taxable(subscription, price, items)
    discount = subscription_discount_params(
        project=subscription.project,
        promotion_code=promotion_code,
        customer_external_id=subscription.customer.external_id,
        currency=subscription.price.currency,
    )
    gateway = _gateway(subscription)
    live = gateway.subscription_retrieve(subscription.stripe_subscription_id)
    if items is not None:
        update, _ = _items_update(subscription, live, items)
    else:
        item_id, live_price, live_quantity = _primary_state(subscription, live)
        _check_one_interval_live(live, item_id, price)
        update = [
            {
                "id": item_id,
                "price": price.stripe_price_id if price else live_price,
                "quantity": quantity or live_quantity or 1,
            }
        ]
    params: dict[str, Any] = {
        "customer": stripe_id(live.get("customer")),
        "subscription": subscription.stripe_subscription_id,
        "subscription_details": {"items": update, "proration_behavior": proration_behavior},
        **discount,
    }
    if automatic_tax is not None:
        params["automatic_tax"] = {"enabled": automatic_tax}
    preview = gateway.invoice_preview(params=params)
    # The lines as an invoice shows them; the preview's output renders the fields it declares.
    return {
        "amount_due": preview["amount_due"],
        "currency": preview["currency"],
        "subtotal": int(preview.get("subtotal") or 0),
        "discount": sum(int(d.get("amount") or 0) for d in preview.get("total_discount_amounts") or []),
        "tax": sum(int(t.get("amount") or 0) for t in preview.get("total_taxes") or []),
        "total": int(preview.get("total") or 0),
        "lines": invoice_lines(preview),
    }


def _check_taxable(subscription: Subscription, price: Price | None, items: list[ItemSpec] | None) -> None:
    """Stripe Tax needs a tax behavior on every price the subscription will bill — the items wanted, or its
    items with `price` in place of the main one — refused before any Stripe call."""
    if items is not None:
        billed = [spec.price for spec in items]
    else:
        rows = list(subscription.items.select_related("price"))
        primary = next((row for row in rows if row.usage_type != Price.UsageType.METERED), None)
        billed = [row.price for row in rows if price is None or primary is None or row.pk != primary.pk]
        billed += [price] if price is not None else ([] if rows else [subscription.price])
    for billed_price in billed:
        if billed_price.tax_behavior == Price.TaxBehavior.UNSPECIFIED:
            raise InvalidRequest(
                f"{billed_price.key!r} has no tax_behavior: automatic tax needs `inclusive` or `exclusive`.",
                code="tax_behavior_unspecified",
                param="automatic_tax",
            )


def subscription_change(
    *,
    subscription: Subscription,
    actor: Actor,
    price: Price | None = None,
    quantity: int | None = None,
    items: list[ItemSpec] | None = None,
    proration_behavior: str = "create_prorations",
    payment_behavior: str | None = None,
    reason: str = "",
    promotion_code: str | None = None,
    automatic_tax: bool | None = None,
) -> Subscription:
    """Changes price and/or quantity at Stripe (the quantity not given is kept: Stripe is always sent both),
    or, with `items`, the whole list of items (see `_items_update`), and/or applies a `promotion_code` (checked
    first: 400 `promotion_code_invalid`). Upgrades, and every change of billing interval (Stripe restarts the
    period and invoices it now), default to `pending_if_incomplete`: a failed payment changes nothing. A change
    Stripe already has (a retry whose first answer was lost) is not sent again. `automatic_tax` turns Stripe
    Tax on or off first (the change's invoice is taxed as asked), once everything is checked. Audited."""
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
        )
    _check_change(subscription, price)
    _check_one_interval(subscription, price)
    if automatic_tax:
        _check_taxable(subscription, price, None)
    specs = [ItemSpec(price=price, quantity=quantity)] if price is not None else []
    with _adding_products(subscription, specs, ["price"] * len(specs)):
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
) -> Subscription:
    discount = subscription_discount_params(
        project=subscription.project,
        promotion_code=promotion_code,
        customer_external_id=subscription.customer.external_id,
        currency=subscription.price.currency,
    )
    gateway = _gateway(subscription)
    live = gateway.subscription_retrieve(subscription.stripe_subscription_id)
    state = _stripe_state(live)
    item_id, live_price, live_quantity = _primary_state(subscription, live)
    _check_one_interval_live(live, item_id, price)
    if automatic_tax is not None:
        subscription = _automatic_tax_write(subscription, actor, automatic_tax, reason, live)
    target = [item_id, price.stripe_price_id if price else live_price, quantity or live_quantity or 1]
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
        answer = gateway.subscription_update(
            subscription.stripe_subscription_id,
            params=params,
            idem=_write_key(subscription, "change", params, state),
        )
    result = _apply_now(subscription, answer)
    _audited(result, "subscription.changed", actor, reason, _apply_now(subscription, live), result)
    return result


def subscription_automatic_tax_set(
    *, subscription: Subscription, actor: Actor, enabled: bool, reason: str = ""
) -> Subscription:
    """Turns Stripe Tax on or off for a subscription's next invoices (`automatic_tax[enabled]`). Its prices need
    a tax behavior and Stripe a customer address (a 400 from Stripe otherwise: nothing changes). Audited."""
    if subscription.status in (Subscription.Status.CANCELED, Subscription.Status.INCOMPLETE_EXPIRED):
        raise Conflict("This subscription has ended.", code="subscription_ended")
    if enabled:
        _check_taxable(subscription, None, None)
    live = _gateway(subscription).subscription_retrieve(subscription.stripe_subscription_id)
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
        answer = _gateway(subscription).subscription_update(
            subscription.stripe_subscription_id,
            params=params,
            idem=_write_key(subscription, "automatic-tax", params, _stripe_state(live)),
        )
    result = _apply_now(subscription, answer)
    _audited(result, "subscription.changed", actor, reason, _apply_now(subscription, live), result)
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
) -> Subscription:
    _check_items(subscription, items)
    if automatic_tax:
        _check_taxable(subscription, None, items)
    with _adding_products(subscription, items, [f"items[{index}].price" for index in range(len(items))]):
        return _items_write(
            subscription=subscription,
            actor=actor,
            items=items,
            proration_behavior=proration_behavior,
            payment_behavior=payment_behavior,
            reason=reason,
            promotion_code=promotion_code,
            automatic_tax=automatic_tax,
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
) -> Subscription:
    discount = subscription_discount_params(
        project=subscription.project,
        promotion_code=promotion_code,
        customer_external_id=subscription.customer.external_id,
        currency=subscription.price.currency,
    )
    gateway = _gateway(subscription)
    live = gateway.subscription_retrieve(subscription.stripe_subscription_id)
    state = _stripe_state(live)
    if automatic_tax is not None:
        subscription = _automatic_tax_write(subscription, actor, automatic_tax, reason, live)
    update, target = _items_update(subscription, live, items)
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
        upgrade = _licensed_total(after) > _licensed_total(before) or _changes_interval(
            subscription, items[0].price
        )
        params: dict[str, Any] = {
            "items": update,
            "proration_behavior": proration_behavior,
            "payment_behavior": payment_behavior
            or ("pending_if_incomplete" if upgrade else "allow_incomplete"),
            **discount,
            # The new discount comes back whole: the mirror needs no second read of Stripe to learn its coupon.
            **({"expand": ["discounts"]} if discount else {}),
        }
        answer = gateway.subscription_update(
            subscription.stripe_subscription_id,
            params=params,
            idem=_write_key(subscription, "items", params, state),
        )
    result = _apply_now(subscription, answer)
    _audited(result, "subscription.changed", actor, reason, _apply_now(subscription, live), result)
    return result


def subscription_cancel(
    *,
    subscription: Subscription,
    actor: Actor,
    at_period_end: bool = True,
    reason: str = "",
    operation: Operation | None = None,
) -> Subscription:
    """Cancels now or at the period's end, at Stripe; a cancellation Stripe already has is not sent again. A
    resumed `operation` (a retry of a tenant's key) answers the subscription as Stripe has it, also when its
    first attempt ended it."""
    ended_here = subscription.status in (Subscription.Status.CANCELED, Subscription.Status.INCOMPLETE_EXPIRED)
    if ended_here and not (operation and operation.resumed):
        raise Conflict("This subscription has already ended.", code="subscription_ended")
    gateway = _gateway(subscription)
    live = gateway.subscription_retrieve(subscription.stripe_subscription_id)
    state = _stripe_state(live)
    ended = state["status"] in (Subscription.Status.CANCELED, Subscription.Status.INCOMPLETE_EXPIRED)
    if ended or (at_period_end and state["cancel_at_period_end"]):
        answer = live
    elif at_period_end:
        params = {"cancel_at_period_end": True}
        answer = gateway.subscription_update(
            subscription.stripe_subscription_id,
            params=params,
            idem=operation.stripe_key("cancel-at-period-end")
            if operation
            else _write_key(subscription, "cancel-at-period-end", params, state),
            operation=operation is not None,
        )
    else:
        answer = gateway.subscription_cancel(subscription.stripe_subscription_id)
    result = _apply_now(subscription, answer)
    action = "subscription.cancel_scheduled" if at_period_end else "subscription.canceled"
    _audited(result, action, actor, reason, _apply_now(subscription, live), result)
    return result


def subscription_resume(
    *, subscription: Subscription, actor: Actor, reason: str = "", operation: Operation | None = None
) -> Subscription:
    """Undoes a scheduled cancellation, or resumes a paused subscription (decided on Stripe's current state:
    the mirror may not have caught up with a change made a moment ago). A resumed `operation` whose first
    attempt already resumed it answers the subscription as Stripe has it."""
    gateway = _gateway(subscription)
    live = gateway.subscription_retrieve(subscription.stripe_subscription_id)
    state = _stripe_state(live)
    if state["status"] == Subscription.Status.PAUSED:
        params: dict[str, Any] = {"billing_cycle_anchor": {"type": "now"}}
        answer = gateway.subscription_resume(
            subscription.stripe_subscription_id,
            params=params,
            idem=operation.stripe_key("resume")
            if operation
            else _write_key(subscription, "resume", params, state),
            operation=operation is not None,
        )
    elif state["cancel_at_period_end"]:
        params = {"cancel_at_period_end": False}
        answer = gateway.subscription_update(
            subscription.stripe_subscription_id,
            params=params,
            idem=operation.stripe_key("resume")
            if operation
            else _write_key(subscription, "resume", params, state),
            operation=operation is not None,
        )
    elif operation and operation.resumed:
        answer = live  # this operation's first attempt resumed it (its answer was lost)
    else:
        raise Conflict(
            "Nothing to resume: the subscription is neither paused nor scheduled to cancel.",
            code="nothing_to_resume",
        )
    result = _apply_now(subscription, answer)
    _audited(result, "subscription.resumed", actor, reason, _apply_now(subscription, live), result)
    return result
