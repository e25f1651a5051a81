"""Moving subscribers between versions of a product (#52 point 3): the live subscriptions holding the product —
all of them, those on some versions, or a list — are put on another published version, now or at the end of each
one's current period; their entitlements follow, each move is audited and announced when it takes effect
(`subscription.version_changed`).

Exactly once per subscriber: a move is a change of state (the item's `product_version`, or the move it has
scheduled: `pending_version` at `pending_version_at`), made under the subscription's row lock, one subscription
per transaction. A subscription already in the state asked is not changed again, so a retried, resumed or
concurrent run moves each one once and announces it once. Moving back before a scheduled move takes effect
cancels it; after, it is a move to the earlier version. A scheduled move is in force from its instant on in
every answer (`entitlements.item_versions`) and in the period invoices that start then (`entitlement_facts`);
beat's `version_moves_due` makes it final and announces it. A preview reads only.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.models import Subscription, SubscriptionItem
from billing.representations import SubscriptionOutput
from billing.services.entitlement_facts import subscription_facts_hand
from billing.services.version_prices import (
    PriceMove,
    PricesPlan,
    live_period_end,
    plan_period_end,
    prices_move,
    prices_pending_drop,
    prices_plan,
    prices_preview,
)
from catalog.models import Price, Product
from catalog.versions import product_versions, version_changes
from core.actors import Actor
from core.audit import audit_record
from core.errors import InvalidRequest, NotFound
from entitlements.services.recompute import entitlements_recompute
from events.services.record import event_record

# At most this many subscriptions named in one request; a cohort is selected by version instead.
MAX_LISTED = 1000
NOW, PERIOD_END = "now", "period_end"
SYSTEM = Actor.system("version moves")


@dataclass
class VersionMove:
    """One subscription's move: from which version to which, when, and what it changes of its entitlements."""

    subscription: Subscription
    from_version: int
    to_version: int
    effective_at: datetime | None  # None: now
    changes: list[dict[str, Any]]
    moved: bool = False
    prices: list[PriceMove] = field(default_factory=list)  # its items moved to the version's Stripe prices
    proration: str | None = None  # the rule the price moves follow (None: no price moves)
    invoice: dict[str, Any] | None = None  # a preview's: what Stripe would invoice for them now


@dataclass
class VersionMoves:
    product: Product
    to_version: int
    when: str
    preview: bool
    moves: list[VersionMove] = field(default_factory=list)


def _wanted(
    row: SubscriptionItem, to_version: int, when: str, period_end: datetime | None
) -> tuple[Any, ...]:
    """The (version, pending version, pending at) the item is to have."""
    if when == NOW or row.product_version == to_version:
        return (to_version, None, None)  # a move back before a scheduled one takes effect cancels it
    due = row.pending_version_at is not None and row.pending_version_at <= timezone.now()
    if row.pending_version == to_version and due:
        return _state(row)  # in force already, beat makes it final: a retry does not push it a period on
    return (row.product_version, to_version, period_end)


def _state(row: SubscriptionItem) -> tuple[Any, ...]:
    return (row.product_version, row.pending_version, row.pending_version_at)


def _selected(
    product: Product,
    to_version: int,
    from_versions: Sequence[int] | None,
    subscriptions: Sequence[str] | None,
    prices: Sequence[str] | None = None,
) -> list[str]:
    """The live subscriptions of the product not on `to_version` or with a move scheduled (of `from_versions`,
    among `subscriptions`, holding one of `prices`), oldest first. Whether each is to change is decided under
    its lock."""
    items = SubscriptionItem.objects.filter(
        project_id=product.project_id, product=product, subscription__status__in=Subscription.LIVE_STATUSES
    )
    items = items.exclude(product_version=to_version, pending_version__isnull=True)
    if from_versions is not None:
        items = items.filter(product_version__in=list(from_versions))
    if subscriptions is not None:
        items = items.filter(subscription_id__in=list(subscriptions))
    if prices is not None:
        items = items.filter(
            subscription_id__in=SubscriptionItem.objects.filter(
                project_id=product.project_id, product=product, price__key__in=list(prices)
            ).values("subscription_id")
        )
    ordered = items.order_by("subscription__created_at", "subscription_id")
    return list(dict.fromkeys(ordered.values_list("subscription_id", flat=True)))


def _check_named(product: Product, subscriptions: Sequence[str]) -> None:
    """Every subscription named is one of the project's (404 otherwise, nothing moved)."""
    known = set(
        Subscription.objects.filter(project_id=product.project_id, pk__in=list(subscriptions)).values_list(
            "pk", flat=True
        )
    )
    if unknown := [s for s in subscriptions if s not in known]:
        raise NotFound(f"No such subscription: {unknown[0]}.", param="subscriptions")


def _check_prices(product: Product, prices: Sequence[str]) -> None:
    """Every price named is one of the product's (400 `unknown_price` otherwise, nothing moved)."""
    known = set(Price.objects.filter(product=product, key__in=list(prices)).values_list("key", flat=True))
    if unknown := [key for key in prices if key not in known]:
        raise InvalidRequest(
            f"prices: {product.key!r} has no price {unknown[0]!r}.", code="unknown_price", param="prices"
        )


def subscriptions_version_move(
    *,
    actor: Actor,
    product: Product,
    to_version: int,
    when: str = NOW,
    from_versions: Sequence[int] | None = None,
    subscriptions: Sequence[str] | None = None,
    prices: Sequence[str] | None = None,
    preview: bool = False,
    reason: str = "",
) -> VersionMoves:
    """Moves the selected live subscriptions of `product` to its published version `to_version`, `when` "now"
    or at each one's "period_end" (or, with `preview`, says what each move would change and writes nothing).
    `prices`: only the subscriptions holding one of these prices of the product (a plan: the monthly ones).
    400 `unknown_version` for a version never published, `unknown_price`; 404 for a subscription named that is
    not the project's."""
    features = {v["number"]: v["features"] for v in product_versions(product)}
    if to_version not in features:
        raise InvalidRequest(
            f"to_version: {product.key!r} has no version {to_version}.",
            code="unknown_version",
            param="to_version",
        )
    if subscriptions is not None:
        _check_named(product, subscriptions)
    if prices is not None:
        _check_prices(product, prices)
    answer = VersionMoves(product=product, to_version=to_version, when=when, preview=preview)
    for subscription_id in _selected(product, to_version, from_versions, subscriptions, prices):
        plan, period_end = _prices(
            actor=actor,
            product=product,
            subscription_id=subscription_id,
            to_version=to_version,
            when=when,
            from_versions=from_versions,
            preview=preview,
            reason=reason,
        )
        move = _move_one(
            actor=actor,
            product=product,
            subscription_id=subscription_id,
            to_version=to_version,
            when=PERIOD_END if plan is not None and plan.rule == PERIOD_END else when,
            period_end=period_end,
            from_versions=from_versions,
            features=features,
            reason=reason,
            preview=preview,
        )
        if move is not None:
            answer.moves.append(move)
            if plan is not None:
                move.prices, move.proration = plan.moves, plan.rule
                move.invoice = prices_preview(subscription=move.subscription, plan=plan) if preview else None
    return answer


def _prices(
    *,
    actor: Actor,
    product: Product,
    subscription_id: str,
    to_version: int,
    when: str,
    from_versions: Sequence[int] | None,
    preview: bool,
    reason: str,
) -> tuple[PricesPlan | None, datetime | None]:
    """The subscription's items moved to the version's Stripe prices first (`version_prices`; a preview: only
    planned), before its version moves here: a run stopped between the two is finished by the next. A move back
    to the version it is on, with a move scheduled, drops the price change the schedule holds for it. With the
    plan, the end of the period Stripe's subscription is in, where a move at the period's end takes effect (read
    for it when no price moves; None for a move made now)."""
    subscription = Subscription.objects.select_related("customer", "project", "price").get(pk=subscription_id)
    if subscription.status not in Subscription.LIVE_STATUSES:
        return None, None
    rows = [
        row
        for row in subscription.items.filter(product=product)
        if from_versions is None or row.product_version in from_versions
    ]
    if not rows:
        return None, None
    current, pending = rows[0].product_version, rows[0].pending_version
    if current == to_version:
        if pending is not None and not preview:
            prices_pending_drop(
                subscription=subscription, actor=actor, product=product, version=current, pending=pending
            )
        return None, None
    plan = prices_plan(
        subscription=subscription, product=product, from_version=current, to_version=to_version, when=when
    )
    if plan is not None:
        if not preview:
            prices_move(subscription=subscription, actor=actor, plan=plan, reason=reason)
        return plan, plan_period_end(plan)
    return None, live_period_end(subscription) if when == PERIOD_END else None


def _move_one(
    *,
    actor: Actor,
    product: Product,
    subscription_id: str,
    to_version: int,
    when: str,
    from_versions: Sequence[int] | None,
    features: dict[int, dict[str, Any]],
    reason: str,
    preview: bool,
    period_end: datetime | None = None,
) -> VersionMove | None:
    """One subscription's move, in its own transaction under its row lock (a preview's: read without it); None
    when, read there, it has nothing to change (moved meanwhile, ended, or off the versions selected). A move at
    the period's end takes effect at `period_end`, the end of the period Stripe's subscription is in (else, with
    Stripe unread, at the mirror's)."""
    with transaction.atomic():
        subscriptions = Subscription.objects.select_related("customer", "project", "price", "product")
        if not preview:  # a preview reads only: it waits for no one and holds no one up
            subscriptions = subscriptions.select_for_update(of=("self",))
        subscription = subscriptions.get(pk=subscription_id)
        rows = list(subscription.items.select_related("price", "product"))
        period_end = period_end or subscription.current_period_end
        moving = [
            row
            for row in rows
            if row.product_id == product.pk
            and (from_versions is None or row.product_version in from_versions)
            and _state(row) != _wanted(row, to_version, when, period_end)
        ]
        if subscription.status not in Subscription.LIVE_STATUSES or not moving:
            return None
        before = moving[0].product_version
        effective_at = None if when == NOW or before == to_version else period_end
        move = VersionMove(
            subscription,
            before,
            to_version,
            effective_at,
            version_changes(features.get(before, {}), features[to_version]),
            moved=not preview,
        )
        if preview:
            return move
        for row in moving:
            row.product_version, row.pending_version, row.pending_version_at = _wanted(
                row, to_version, when, period_end
            )
            row.save(update_fields=["product_version", "pending_version", "pending_version_at", "updated_at"])
        _told(subscription, rows)
        if effective_at is not None:
            action = "subscription.version_move_scheduled"
        elif before == to_version:
            action = "subscription.version_move_canceled"
        else:
            action = "subscription.version_changed"
        after = {"product": product.key, "version": to_version}
        if effective_at is not None:
            after["effective_at"] = effective_at.isoformat()
        audit_record(
            actor=actor,
            action=action,
            target=subscription,
            project=subscription.project,
            reason=reason,
            before={"product": product.key, "version": before},
            after=after,
        )
        if action == "subscription.version_changed":
            _announce(subscription, product, before)
    return move


def _told(subscription: Subscription, rows: list[SubscriptionItem]) -> None:
    """Entitlements are handed the items as they now are, and the customer's answers recomputed."""
    subscription_facts_hand(
        subscription=subscription,
        price=subscription.price,
        items=[({"id": row.stripe_item_id, "quantity": row.quantity}, row.price) for row in rows],
        rows=rows,
    )
    entitlements_recompute(customer=subscription.customer)


def _announce(subscription: Subscription, product: Product, before: int) -> None:
    event_record(
        project=subscription.project,
        type="subscription.version_changed",
        data_object=dict(SubscriptionOutput(subscription).data),
        previous_attributes={"product": product.key, "version": before},
    )


def version_moves_due(*, now: datetime | None = None, limit: int = 100) -> int:
    """Makes final the moves scheduled for a period's end that has passed (the answers already follow them):
    each item on its new version, audited by the system and announced once. A subscription another transaction
    holds is left to the next run. Returns how many subscriptions were moved."""
    now = now or timezone.now()
    due = list(
        dict.fromkeys(
            SubscriptionItem.objects.filter(pending_version__isnull=False, pending_version_at__lte=now)
            .order_by("pending_version_at", "subscription_id")
            .values_list("subscription_id", flat=True)[:limit]
        )
    )
    moved = 0
    for subscription_id in due:
        with transaction.atomic():
            subscription = (
                Subscription.objects.select_for_update(of=("self",), skip_locked=True)
                .select_related("customer", "project", "price", "product")
                .filter(pk=subscription_id)
                .first()
            )
            if subscription is None:
                continue
            rows = list(subscription.items.select_related("price", "product"))
            ripe = [
                row for row in rows if row.pending_version_at is not None and row.pending_version_at <= now
            ]
            if not ripe:
                continue
            live = subscription.status in Subscription.LIVE_STATUSES
            for row in ripe:
                before = row.product_version
                if live:
                    row.product_version = row.pending_version or row.product_version
                row.pending_version, row.pending_version_at = None, None
                row.save(
                    update_fields=["product_version", "pending_version", "pending_version_at", "updated_at"]
                )
            _told(subscription, rows)
            if not live:  # ended before its move: nothing to announce
                continue
            product = ripe[0].product
            audit_record(
                actor=SYSTEM,
                action="subscription.version_changed",
                target=subscription,
                project=subscription.project,
                reason="the move scheduled for the period's end",
                before={"product": product.key, "version": before},
                after={"product": product.key, "version": ripe[0].product_version},
            )
            _announce(subscription, product, before)
            moved += 1
    return moved
