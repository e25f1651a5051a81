"""The subscription mirror: Stripe subscriptions applied by webhooks (and reconciliation) in Stripe's order,
routed to our customers and prices by Stripe id, with the Stripe read rate limit their re-fetches stay under
(`stripe_gateway.read_limit`), the tenant-visible events and the entitlements hook of each change.
"""

import hashlib
import hmac
import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from billing import statements
from billing.models import Subscription, SubscriptionItem
from billing.representations import SubscriptionOutput
from billing.services.discount_mirror import subscription_discount
from billing.services.entitlement_facts import plan_credits_catch_up, subscription_facts_hand
from billing.services.invoices import invoices_link_subscription
from billing.services.revenue_figures import subscription_figures
from catalog.models import Price
from catalog.selectors import price_for_stripe
from catalog.versions import versions_at
from core.serializers import api_time
from core.statements import prefetch_forget, prefetch_set
from customers.models import Customer
from customers.services.customers import customer_for_stripe
from entitlements.services.meters import meter_events_unskip
from entitlements.services.recompute import entitlements_recompute
from events.services.record import event_record
from projects.models import Project
from stripe_gateway.gateway import StripeGateway, from_timestamp, stripe_id
from stripe_gateway.read_limit import stripe_read_allowed

logger = logging.getLogger(__name__)


def subscription_item_id(project_id: str, stripe_item_id: str) -> str:
    """The public id of the item of a project mirroring Stripe's item `stripe_item_id`: derived (keyed by the
    secret key, so unguessable), so an answer rendered from Stripe before the mirror has the row shows the id
    the row then gets."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"{project_id}:{stripe_item_id}".encode(), hashlib.sha256
    ).hexdigest()
    return f"si_{digest[:24]}"


_TRACKED = (
    "status",
    "price_id",
    "quantity",
    "cancel_at_period_end",
    "current_period_end",
    "trial_end",
    "discount",
)
# What a subscription gives depends on its status, items (price, product, quantity), period, trial and whether it
# ends with its period: a change of anything else (a discount) is announced but recomputes nothing.
ENTITLEMENT_FIELDS = frozenset(
    {"status", "price_id", "quantity", "current_period_end", "trial_end", "cancel_at_period_end", "items"}
)


def subscription_items_resolve(
    *, project: Project, stripe_subscription: dict[str, Any]
) -> list[tuple[dict[str, Any], Price]]:
    """The Stripe subscription's items with the catalog price each one is of, in Stripe's order. An item whose
    price is not in the catalog is logged and left out (the others still mirror)."""
    resolved = []
    for item in (stripe_subscription.get("items") or {}).get("data") or []:
        price = price_for_stripe(project=project, stripe_price_id=stripe_id(item.get("price")))
        if price is None:
            logger.warning(
                "Subscription %s has an item %s whose price is not in the catalog; it is not mirrored.",
                stripe_subscription.get("id"),
                item.get("id"),
            )
            continue
        resolved.append((item, price))
    return resolved


def primary_item(items: list[tuple[dict[str, Any], Price]]) -> tuple[dict[str, Any], Price]:
    """The item `Subscription.price/product/quantity` repeat: the first licensed one, else the first."""
    return next((entry for entry in items if entry[1].usage_type != Price.UsageType.METERED), items[0])


def _item_fields(item: dict[str, Any], price: Price) -> dict[str, Any]:
    metered = price.usage_type == Price.UsageType.METERED
    return {
        "price_id": price.pk,
        "product_id": price.product_id,
        "stripe_price_id": stripe_id(item.get("price")),
        "quantity": None if metered else int(item.get("quantity") or 1),
        "usage_type": price.usage_type,
    }


def _items_state(items: list[tuple[dict[str, Any], Price]]) -> list[tuple[Any, ...]]:
    """The items as comparable tuples (Stripe item id, price, quantity, then what else a row stores: Stripe's
    price id and the item's place), by Stripe item id."""
    return sorted(
        (item["id"], fields["price_id"], fields["quantity"], fields["stripe_price_id"], position)
        for position, (item, price) in enumerate(items)
        for fields in [_item_fields(item, price)]
    )


def _stored_items_state(rows: list[SubscriptionItem]) -> list[tuple[Any, ...]]:
    return sorted(
        (row.stripe_item_id, row.price_id, row.quantity, row.stripe_price_id, row.position) for row in rows
    )


def _items_shown(state: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """What of the items a tenant sees change (item, price, quantity)."""
    return [row[:3] for row in state]


def subscription_items_sync(
    subscription: Subscription,
    items: list[tuple[dict[str, Any], Price]],
    *,
    stored: list[SubscriptionItem] | None = None,
    on_clock: bool = False,
) -> list[SubscriptionItem]:
    """Brings the subscription's item rows to Stripe's `items` (by Stripe item id): new ones created, changed
    ones updated, those Stripe no longer has deleted. A meter the subscription bills from now on takes back the
    customer's usage of it that was skipped in the item's period (`_meters_added`). Runs in the caller's
    transaction; `stored` are the rows as read under the subscription's lock (read here when not given).
    Returns the rows as they are now, in the order the API shows them. `on_clock`: the subscription is on a test
    clock, whose times are simulated: a new item is on its product's latest version."""
    wanted = {
        item["id"]: {**_item_fields(item, price), "position": position}
        for position, (item, price) in enumerate(items)
    }
    if stored is None:
        stored = list(subscription.items.all())
    _meters_added(subscription, items, stored)
    if any(row.stripe_item_id not in wanted for row in stored):
        subscription.items.exclude(stripe_item_id__in=list(wanted)).delete()
    rows = {row.stripe_item_id: row for row in stored if row.stripe_item_id in wanted}
    # The version each new item is on: the product's in force when Stripe created the item; an item moved to
    # another product takes that product's latest.
    moments = {
        item["id"]: from_timestamp(item.get("created")) if item["id"] not in rows and not on_clock else None
        for item, price in items
        if item["id"] not in rows or rows[item["id"]].product_id != price.product_id
    }
    versions = (
        versions_at(
            [(price.product_id, moments[item["id"]]) for item, price in items if item["id"] in moments]
        )
        if moments
        else {}
    )
    created = []
    for stripe_item_id, fields in wanted.items():
        row = rows.get(stripe_item_id)
        version_key = (fields["product_id"], moments.get(stripe_item_id))
        if row is None:
            row = SubscriptionItem(
                id=subscription_item_id(subscription.project_id, stripe_item_id),
                project_id=subscription.project_id,
                subscription=subscription,
                stripe_item_id=stripe_item_id,
                product_version=versions[version_key],
                **fields,
            )
            rows[stripe_item_id] = row
            created.append(row)
        elif any(getattr(row, name) != value for name, value in fields.items()):
            changed = list(fields)
            if row.product_id != fields["product_id"]:
                row.product_version = versions[version_key]
                changed.append("product_version")
            for name, value in fields.items():
                setattr(row, name, value)
            row.save(update_fields=[*changed, "updated_at"])
    if created:
        SubscriptionItem.objects.bulk_create(created)
    return sorted(rows.values(), key=lambda row: (row.position, row.created_at, row.pk))


def _meters_added(
    subscription: Subscription, items: list[tuple[dict[str, Any], Price]], stored: list[SubscriptionItem]
) -> None:
    """Usage of a meter recorded after Stripe started billing it on this subscription but before the item was
    mirrored here was skipped (nothing billed it, as far as Tollgate knew): it is reported now, so the renewal
    invoice bills it. Stripe started billing it at the item's period start, or at the item's creation when it was
    added within the period (Stripe bills a metered item only for the usage from its addition on): usage before
    that stays skipped. Called before the rows change (`stored`), to compare with the meters they bill."""
    metered = [
        (item, price)
        for item, price in items
        if price.usage_type == Price.UsageType.METERED and price.meter_id
    ]
    if not metered:
        return
    prices = {price.pk: price for _, price in items}
    billed_rows = [row for row in stored if row.usage_type == Price.UsageType.METERED]
    if all(row.price_id in prices for row in billed_rows):
        billed = {prices[row.price_id].meter_id for row in billed_rows}
    else:  # a row of a price Stripe's items no longer have
        billed = set(
            subscription.items.filter(usage_type=Price.UsageType.METERED).values_list(
                "price__meter_id", flat=True
            )
        )
    for item, price in metered:
        if price.meter_id in billed:
            continue
        billed.add(price.meter_id)
        period_start = item.get("current_period_start")
        start, end = (
            from_timestamp(max(period_start, item.get("created") or 0) if period_start else None),
            from_timestamp(item.get("current_period_end")),
        )
        if start is not None and end is not None:
            meter_events_unskip(
                customer_id=subscription.customer_id,
                feature_id=price.meter_id,
                period_start=start,
                period_end=end,
            )


def _items_loaded(
    subscription: Subscription, rows: list[SubscriptionItem], items: list[tuple[dict[str, Any], Price]]
) -> None:
    """Gives the subscription its item `rows` as a prefetch would (each with the price and product Stripe's
    `items` were routed to), so its representation reads them no more. Left to be read when a row's price or
    product is not one of those."""
    prices = {price.pk: price for _, price in items}
    if any(row.price_id not in prices or prices[row.price_id].product_id != row.product_id for row in rows):
        prefetch_forget(subscription, "items")
        return
    for row in rows:
        row.price = prices[row.price_id]
        row.product = row.price.product
    prefetch_set(subscription, "items", rows)


def _figures_saved(subscription: Subscription, price: Price) -> None:
    """What the subscription counts in the MRR figure, after its status and items (loaded) changed. `price`: its
    primary price as the mirror routed it (not read again for its currency)."""
    if subscription.price_id == price.pk:
        subscription.price = price
    fields = subscription_figures(subscription)
    if fields:
        subscription.save(update_fields=fields)


def subscription_items_unsaved(
    subscription: Subscription, items: list[tuple[dict[str, Any], Price]]
) -> list[SubscriptionItem]:
    """Stripe's items as rows of `subscription`, NOT saved (an answer rendered before its events arrive), with
    the ids the mirror has given (or will give) them."""
    known = {
        stripe_item_id: (pk, product_id, version)
        for stripe_item_id, pk, product_id, version in subscription.items.values_list(
            "stripe_item_id", "pk", "product_id", "product_version"
        )
    }

    def version_of(item: dict[str, Any], price: Price) -> int:
        """A mirrored item keeps its version while its product stays; a new one shows the product's latest."""
        _, product_id, version = known.get(item["id"], ("", "", 0))
        return version if product_id == price.product_id else price.product.version

    return [
        SubscriptionItem(
            id=known[item["id"]][0]
            if item["id"] in known
            else subscription_item_id(subscription.project_id, item["id"]),
            product_version=version_of(item, price),
            project_id=subscription.project_id,
            subscription=subscription,
            stripe_item_id=item["id"],
            price=price,
            product=price.product,
            position=position,
            **{k: v for k, v in _item_fields(item, price).items() if k not in ("price_id", "product_id")},
        )
        for position, (item, price) in enumerate(items)
    ]


def _subscription_fields(
    stripe_subscription: dict[str, Any], price: Price, item: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The subscription's own fields, with price, product and quantity of its primary `item` (by default the
    first of Stripe's items)."""
    if item is None:
        item = ((stripe_subscription.get("items") or {}).get("data") or [{}])[0]
    return {
        "status": stripe_subscription["status"],
        "price_id": price.pk,
        "product_id": price.product_id,
        "stripe_price_id": stripe_id(item.get("price")),
        "quantity": int(item.get("quantity") or 1),
        "current_period_start": from_timestamp(item.get("current_period_start")),
        "current_period_end": from_timestamp(item.get("current_period_end")),
        "cancel_at_period_end": bool(stripe_subscription.get("cancel_at_period_end")),
        "trial_end": from_timestamp(stripe_subscription.get("trial_end")),
        "canceled_at": from_timestamp(stripe_subscription.get("canceled_at")),
        "ended_at": from_timestamp(stripe_subscription.get("ended_at")),
    }


class Ambiguous(Exception):
    """Two events of one object in the same second: only Stripe knows which state is current."""


def _items_of(subscription: Subscription) -> list[SubscriptionItem]:
    rows = statements.ITEMS.rows(subscription_id=subscription.pk)
    for row in rows:
        row.subscription = subscription  # as the related manager gives them: no query to get back to it
    return rows


def subscription_apply(
    *, account: str, stripe_subscription: dict[str, Any], event_created: int, force: bool = False
) -> Subscription | None:
    """Applies Stripe's subscription to its mirror (created on first sight), its items with it. Returns None
    for objects not ours (or whose prices are none of them in the catalog).
    Raises Ambiguous when the event is as old as the last applied one and says something else."""
    customer = customer_for_stripe(
        account=account,
        stripe_customer_id=stripe_id(stripe_subscription.get("customer")),
        metadata=stripe_subscription.get("metadata"),
    )
    if customer is None:
        return None
    items = subscription_items_resolve(project=customer.project, stripe_subscription=stripe_subscription)
    if not items:
        logger.warning("Subscription %s has no price that is in the catalog.", stripe_subscription.get("id"))
        return None
    item, price = primary_item(items)
    fields = _subscription_fields(stripe_subscription, price, item)
    fields["discount"] = subscription_discount(
        project=customer.project,
        account=account,
        stripe_subscription=stripe_subscription,
        current=Subscription.objects.filter(
            project=customer.project, stripe_subscription_id=stripe_subscription["id"]
        )
        .values_list("discount", flat=True)
        .first()
        if stripe_subscription.get("discounts")
        else None,  # no discount: nothing to compare with
    )
    items_state = _items_state(items)
    on_clock = bool(stripe_subscription.get("test_clock"))
    try:
        with transaction.atomic():
            subscription = statements.SUBSCRIPTION_LOCKED.first(
                project_id=customer.project_id, stripe_subscription_id=stripe_subscription["id"]
            )
            if subscription is None:
                subscription = Subscription.objects.create(
                    project=customer.project,
                    customer=customer,
                    stripe_subscription_id=stripe_subscription["id"],
                    stripe_event_created=event_created,
                    **fields,
                )
                # Linked first, before this transaction locks any other row: the link waits for a lock that a
                # new invoice's (or its payment's) transaction may hold.
                invoices_link_subscription(subscription)
                rows = subscription_items_sync(subscription, items, stored=[], on_clock=on_clock)
                subscription_facts_hand(subscription=subscription, price=price, items=items, rows=rows)
                _items_loaded(subscription, rows, items)
                _figures_saved(subscription, price)
                _subscription_events(_with_relations(subscription, customer, price), None, {})
                return subscription
            rows = _items_of(subscription)
            stored_items = _stored_items_state(rows)
            if not force:
                if event_created < subscription.stripe_event_created:
                    return subscription  # an older event: Stripe has moved on
                if event_created == subscription.stripe_event_created and (
                    any(getattr(subscription, k) != v for k, v in fields.items())
                    or _items_shown(stored_items) != _items_shown(items_state)
                ):
                    raise Ambiguous(stripe_subscription["id"])
            before = {k: getattr(subscription, k) for k in fields}
            items_shown_changed = _items_shown(stored_items) != _items_shown(items_state)
            previous_items = None
            if items_shown_changed:
                _items_loaded(subscription, rows, items)
                previous_items = SubscriptionOutput.items_of(subscription)
            for name, value in fields.items():
                setattr(subscription, name, value)
            subscription.stripe_event_created = max(event_created, subscription.stripe_event_created)
            subscription.save(update_fields=[*fields, "stripe_event_created", "updated_at"])
            if stored_items != items_state:  # most events of a subscription leave its items as they are
                rows = subscription_items_sync(subscription, items, stored=rows, on_clock=on_clock)
            subscription_facts_hand(subscription=subscription, price=price, items=items, rows=rows)
            _items_loaded(subscription, rows, items)
            _figures_saved(subscription, price)
            changed: dict[str, Any] = {k: before[k] for k in _TRACKED if before[k] != fields[k]}
            if items_shown_changed:
                changed["items"] = previous_items
            if changed:
                _subscription_events(
                    _with_relations(subscription, customer, price), before["status"], changed
                )
            return subscription
    except IntegrityError:  # created concurrently by another event of the same subscription: apply again
        return subscription_apply(
            account=account,
            stripe_subscription=stripe_subscription,
            event_created=event_created,
            force=force,
        )


def _with_relations(subscription: Subscription, customer: Customer, price: Price) -> Subscription:
    """The mirror with the customer, project, price and product it was just routed to (already loaded), so
    its representation reads nothing again."""
    if subscription.customer_id != customer.pk or subscription.price_id != price.pk:
        return Subscription.objects.select_related("customer", "price", "product", "project").get(
            pk=subscription.pk
        )
    subscription.customer = customer
    subscription.project = customer.project
    subscription.price = price
    subscription.product = price.product
    return subscription


def _subscription_events(
    subscription: Subscription, previous_status: str | None, changed: dict[str, Any]
) -> None:
    data = dict(SubscriptionOutput(subscription).data)
    previous = {
        ("price" if k == "price_id" else k): (api_time(v) if isinstance(v, datetime) else v)
        for k, v in changed.items()
    }
    if previous.get("price"):
        old = Price.objects.filter(pk=previous["price"]).first()
        previous["price"] = old.key if old else previous["price"]
    # Entitlements first: the project's event sequence (locked by event_record until commit) is held briefly.
    if previous_status is None or ENTITLEMENT_FIELDS & changed.keys():
        _entitlements_changed(subscription.customer)
    if previous_status is None:
        event_record(project=subscription.project, type="subscription.created", data_object=data)
    else:
        event_type = "subscription.updated"
        if "status" in changed and subscription.status == Subscription.Status.CANCELED:
            event_type = "subscription.canceled"
        elif "status" in changed and subscription.status == Subscription.Status.PAST_DUE:
            event_type = "subscription.past_due"
        event_record(
            project=subscription.project, type=event_type, data_object=data, previous_attributes=previous
        )


def _entitlements_changed(customer: Customer) -> None:
    """The entitlements hook: what this customer may use has (possibly) changed (and a period invoice paid before
    it was mirrored may be settled by now)."""
    plan_credits_catch_up(customer=customer)
    entitlements_recompute(customer=customer)


def subscription_refetch_and_apply(
    *, account: str, gateway: StripeGateway, stripe_subscription_id: str, event_created: int
) -> Subscription | None:
    """Applies Stripe's current state of the subscription, stamped with Stripe's clock as of the read (read
    first): an event older than that, arriving later, describes an older state and is not applied over it."""
    # Stripe's time for this subscription's customer: a test clock's own, when the customer is on one.
    mirrored = list(
        Subscription.objects.filter(stripe_subscription_id=stripe_subscription_id).values_list(
            "customer__test_clock__stripe_test_clock_id", flat=True
        )[:1]
    )
    if mirrored:
        test_clock = mirrored[0] or ""
    else:  # not mirrored yet: Stripe's object names its clock
        stripe_read_allowed(account)
        test_clock = stripe_id(gateway.subscription_retrieve(stripe_subscription_id).get("test_clock"))
    stripe_read_allowed(account)
    as_of = gateway.clock(test_clock)
    stripe_read_allowed(account)
    fresh = gateway.subscription_retrieve(stripe_subscription_id)
    return subscription_apply(
        account=account, stripe_subscription=fresh, event_created=max(event_created, as_of), force=True
    )
