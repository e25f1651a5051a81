"""How a tenant's write on a subscription reaches Stripe and comes back: the Stripe state it is decided on,
its idempotency key (derived from the subscription, the request and that state), Stripe's answer applied
to an unsaved copy for the response (the mirror itself only changes through Stripe's events), and the audit
row.
"""

import hashlib
import json
from typing import Any

from django.db import transaction

from billing.models import Subscription
from billing.representations import SubscriptionOutput
from billing.services.discount_mirror import subscription_discount
from billing.services.subscription_mirror import (
    _subscription_fields,
    primary_item,
    subscription_items_resolve,
    subscription_items_unsaved,
)
from core.actors import Actor
from core.audit import audit_record
from stripe_gateway.gateway import StripeGateway, gateway_for, idempotency_key, stripe_account_of, stripe_id


def subscription_gateway(subscription: Subscription) -> StripeGateway:
    return gateway_for(subscription.project)


def apply_now(subscription: Subscription, stripe_subscription: dict[str, Any]) -> Subscription:
    """The subscription as Stripe's answer says it is now — NOT saved. The mirror changes only through Stripe's
    events, applied in their order: saving the answer here would let events older than it (still in flight)
    be applied after it and revert it. The caller renders this copy (its items as `items_answer`), so the
    response already shows Stripe's answer, and the webhooks that follow bring the mirror to the same state."""
    items = subscription_items_resolve(project=subscription.project, stripe_subscription=stripe_subscription)
    answer = Subscription.objects.select_related("customer", "price", "product", "project").get(
        pk=subscription.pk
    )
    if not stripe_subscription.get("schedule"):
        answer.pending_change = None  # no schedule at Stripe holds a change for it (its events may follow)
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


def stripe_state(stripe_subscription: dict[str, Any]) -> dict[str, Any]:
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


def primary_state(subscription: Subscription, live: dict[str, Any]) -> list[Any]:
    """[Stripe item id, Stripe price id, quantity] of the item a `price`/`quantity` change is about: the primary
    one (the first licensed item of the catalog; Stripe's first when none is ours)."""
    resolved = subscription_items_resolve(project=subscription.project, stripe_subscription=live)
    items = (live.get("items") or {}).get("data") or [{}]
    item = primary_item(resolved)[0] if resolved else items[0]
    return [item.get("id"), stripe_id(item.get("price")), item.get("quantity")]


def write_key(
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


def audited(
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
