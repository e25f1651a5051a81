"""What refuses a tenant's change before any Stripe write: an ended subscription, a price that is not an
active recurring one or in another currency, items of mixed billing intervals (on the mirror, then on
Stripe's items), a product the customer already holds on another live subscription, a price without a tax
behavior when Stripe Tax is on.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from billing.models import Subscription
from billing.services.subscription_items import ItemSpec, already_subscribed_check, customer_subscribing
from catalog.models import Price
from core.errors import Conflict, InvalidRequest


def check_change(subscription: Subscription, price: Price | None) -> None:
    if subscription.status in Subscription.ENDED_STATUSES:
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


def check_one_interval(subscription: Subscription, price: Price | None) -> None:
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


def check_one_interval_live(live: dict[str, Any], item_id: str, price: Price | None) -> None:
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


def new_products_check(subscription: Subscription, specs: list[ItemSpec], params: list[str]) -> bool:
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
def adding_products(subscription: Subscription, specs: list[ItemSpec], params: list[str]) -> Iterator[None]:
    """Around a change's Stripe write: when it adds a product, `already_subscribed` is checked, then checked
    again and the write made while the customer's subscription writes are serialized (`customer_subscribing`),
    as `POST /subscriptions` does."""
    if not new_products_check(subscription, specs, params):
        yield
        return
    with customer_subscribing(subscription.customer):
        new_products_check(subscription, specs, params)
        yield


def check_items(subscription: Subscription, items: list[ItemSpec]) -> None:
    if subscription.status in Subscription.ENDED_STATUSES:
        raise Conflict("This subscription has ended.", code="subscription_ended")
    if items[0].price.currency != subscription.price.currency:
        raise Conflict(
            "The new items are in another currency.", code="currency_mismatch", param="items[0].price"
        )


def check_taxable(subscription: Subscription, price: Price | None, items: list[ItemSpec] | None) -> None:
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
