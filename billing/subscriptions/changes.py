"""Tenant-requested changes: change price or quantity, cancel and resume, sent to Stripe with idempotency keys
derived from the subscription, the request and the Stripe state they were decided on, and audited. The mirror
itself only changes through Stripe's events; the answer is rendered from Stripe's reply.
"""

import hashlib
import json
from typing import Any

from django.db import transaction

from billing.gateway import StripeGateway, gateway_for, idempotency_key, stripe_id
from billing.models import Price, Subscription
from billing.subscriptions.mirror import _subscription_fields, price_for_stripe
from core.actors import Actor
from core.errors import Conflict, InvalidRequest
from core.services import audit_record


def _gateway(subscription: Subscription) -> StripeGateway:
    return gateway_for(subscription.project)


def _apply_now(subscription: Subscription, stripe_subscription: dict[str, Any]) -> Subscription:
    """The subscription as Stripe's answer says it is now — NOT saved. The mirror changes only through Stripe's
    events, applied in their order: saving the answer here would let events older than it (still in flight)
    be applied after it and revert it. The caller renders this copy, so the response already shows Stripe's
    answer, and the webhooks that follow bring the mirror to the same state."""
    items = (stripe_subscription.get("items") or {}).get("data") or [{}]
    price = (
        price_for_stripe(project=subscription.project, stripe_price_id=stripe_id(items[0].get("price")))
        or subscription.price
    )
    answer = Subscription.objects.select_related("customer", "price", "product", "project").get(
        pk=subscription.pk
    )
    for name, value in _subscription_fields(stripe_subscription, price).items():
        setattr(answer, name, value)
    answer.price = price
    answer.product = price.product
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


def _write_key(
    subscription: Subscription, operation: str, params: dict[str, Any], state: dict[str, Any]
) -> str:
    """The Stripe idempotency key of a tenant's write: our subscription, the operation, the request and the
    Stripe state it was decided on. A retry of the same request on the same state (the first one never reached
    Stripe, or its answer was lost on the way) carries the same key, so Stripe applies it once."""
    digest = hashlib.sha256(json.dumps([params, state], sort_keys=True).encode()).hexdigest()[:32]
    return idempotency_key("subscription", subscription.pk, operation, digest)


def _audited(
    subscription: Subscription,
    action: str,
    actor: Actor,
    reason: str,
    before: Subscription,
    after: Subscription,
) -> None:
    def state(s: Subscription) -> dict[str, Any]:
        return {
            "price": s.price.key,
            "quantity": s.quantity,
            "status": s.status,
            "cancel_at_period_end": s.cancel_at_period_end,
        }

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


def subscription_change(
    *,
    subscription: Subscription,
    actor: Actor,
    price: Price | None = None,
    quantity: int | None = None,
    proration_behavior: str = "create_prorations",
    payment_behavior: str | None = None,
    reason: str = "",
) -> Subscription:
    """Changes price and/or quantity at Stripe (the quantity not given is kept: Stripe is always sent both).
    Upgrades default to `pending_if_incomplete`: a failed upgrade payment changes nothing. A change Stripe
    already has (a retry whose first answer was lost) is not sent again. Audited."""
    if subscription.status in (Subscription.Status.CANCELED, Subscription.Status.INCOMPLETE_EXPIRED):
        raise Conflict("This subscription has ended.", code="subscription_ended")
    if price is not None:
        if not price.is_recurring or not price.active or not price.stripe_price_id:
            raise InvalidRequest(
                "price must be an active recurring price.", code="price_not_recurring", param="price"
            )
        if price.currency != subscription.price.currency:
            raise Conflict("The new price is in another currency.", code="currency_mismatch", param="price")
    gateway = _gateway(subscription)
    live = gateway.subscription_retrieve(subscription.stripe_subscription_id)
    state = _stripe_state(live)
    item_id, live_price, live_quantity = state["items"][0]
    target = [item_id, price.stripe_price_id if price else live_price, quantity or live_quantity or 1]
    if target in (state["items"][0], *state["pending"]):
        answer = live  # Stripe already has it (or holds it as the pending update of an unpaid upgrade)
    else:
        upgrade = (
            price is not None
            and price.unit_amount * (quantity or subscription.quantity)
            > subscription.price.unit_amount * subscription.quantity
        )
        params: dict[str, Any] = {
            "items": [{"id": item_id, "price": target[1], "quantity": target[2]}],
            "proration_behavior": proration_behavior,
            "payment_behavior": payment_behavior
            or ("pending_if_incomplete" if upgrade else "allow_incomplete"),
        }
        answer = gateway.subscription_update(
            subscription.stripe_subscription_id,
            params=params,
            idem=_write_key(subscription, "change", params, state),
        )
    result = _apply_now(subscription, answer)
    _audited(result, "subscription.changed", actor, reason, _apply_now(subscription, live), result)
    return result


def subscription_cancel(
    *, subscription: Subscription, actor: Actor, at_period_end: bool = True, reason: str = ""
) -> Subscription:
    """Cancels now or at the period's end, at Stripe; a cancellation Stripe already has is not sent again."""
    if subscription.status in (Subscription.Status.CANCELED, Subscription.Status.INCOMPLETE_EXPIRED):
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
            idem=_write_key(subscription, "cancel-at-period-end", params, state),
        )
    else:
        answer = gateway.subscription_cancel(subscription.stripe_subscription_id)
    result = _apply_now(subscription, answer)
    action = "subscription.cancel_scheduled" if at_period_end else "subscription.canceled"
    _audited(result, action, actor, reason, _apply_now(subscription, live), result)
    return result


def subscription_resume(*, subscription: Subscription, actor: Actor, reason: str = "") -> Subscription:
    """Undoes a scheduled cancellation, or resumes a paused subscription (decided on Stripe's current state:
    the mirror may not have caught up with a change made a moment ago)."""
    gateway = _gateway(subscription)
    live = gateway.subscription_retrieve(subscription.stripe_subscription_id)
    state = _stripe_state(live)
    if state["status"] == Subscription.Status.PAUSED:
        params: dict[str, Any] = {"billing_cycle_anchor": "now"}
        answer = gateway.subscription_resume(
            subscription.stripe_subscription_id,
            params=params,
            idem=_write_key(subscription, "resume", params, state),
        )
    elif state["cancel_at_period_end"]:
        params = {"cancel_at_period_end": False}
        answer = gateway.subscription_update(
            subscription.stripe_subscription_id,
            params=params,
            idem=_write_key(subscription, "resume", params, state),
        )
    else:
        raise Conflict(
            "Nothing to resume: the subscription is neither paused nor scheduled to cancel.",
            code="nothing_to_resume",
        )
    result = _apply_now(subscription, answer)
    _audited(result, "subscription.resumed", actor, reason, _apply_now(subscription, live), result)
    return result
