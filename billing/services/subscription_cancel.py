"""A tenant's cancellation (now or at the period's end) and its undoing (resume), decided on Stripe's current
state, sent with idempotency keys and audited (`billing.services.subscription_stripe_writes`).
"""

from typing import Any

from billing.models import Subscription
from billing.services.meter_reports import meter_usage_settle
from billing.services.subscription_schedules import subscription_pending_drop
from billing.services.subscription_stripe_writes import (
    apply_now,
    audited,
    stripe_state,
    subscription_gateway,
    write_key,
)
from core.actors import Actor
from core.errors import Conflict
from core.idempotency import Operation


def subscription_cancel(
    *,
    subscription: Subscription,
    actor: Actor,
    at_period_end: bool = True,
    reason: str = "",
    operation: Operation | None = None,
) -> Subscription:
    """Cancels now or at the period's end, at Stripe; a cancellation Stripe already has is not sent again; a
    change pending at the period's end is dropped (`subscription_schedules.subscription_pending_drop`). Canceled
    now, a subscription with a metered item is billed its period's usage on a final invoice. A
    resumed `operation` (a retry of a tenant's key) answers the subscription as Stripe has it, also when its
    first attempt ended it."""
    ended_here = subscription.status in Subscription.ENDED_STATUSES
    if ended_here and not (operation and operation.resumed):
        raise Conflict("This subscription has already ended.", code="subscription_ended")
    gateway = subscription_gateway(subscription)
    live = gateway.subscription_retrieve(subscription.stripe_subscription_id)
    state = stripe_state(live)
    ended = state["status"] in Subscription.ENDED_STATUSES
    if at_period_end and not ended and live.get("schedule"):
        # A change pending at the period's end is dropped (its schedule released): the subscription ends then,
        # and Stripe takes no cancellation on a subscription its schedule drives. Canceling now ends both.
        live = subscription_pending_drop(subscription=subscription, live=live)
    if ended or (at_period_end and state["cancel_at_period_end"]):
        answer = live
    elif at_period_end:
        params = {"cancel_at_period_end": True}
        answer = gateway.subscription_update(
            subscription.stripe_subscription_id,
            params=params,
            idem=operation.stripe_key("cancel-at-period-end")
            if operation
            else write_key(subscription, "cancel-at-period-end", params, state),
            operation=operation is not None,
        )
    elif _has_metered_item(live):
        # Metered usage is billed in arrears: ended without a final invoice, the cut-short period's usage would
        # be billed by nobody. Its pending usage is reported first (in a second of its own, as an interval switch
        # does), then Stripe invoices it with the pending proration items as it ends (`invoice_now`; `prorate`
        # stays off: an immediate cancel credits no unused time).
        meter_usage_settle(subscription=subscription)
        answer = gateway.subscription_cancel(
            subscription.stripe_subscription_id, params={"invoice_now": True}
        )
    else:
        answer = gateway.subscription_cancel(subscription.stripe_subscription_id)
    result = apply_now(subscription, answer)
    action = "subscription.cancel_scheduled" if at_period_end else "subscription.canceled"
    audited(result, action, actor, reason, apply_now(subscription, live), result)
    return result


def _has_metered_item(live: dict[str, Any]) -> bool:
    """Whether Stripe's subscription has an item on a metered price (what a final invoice bills)."""
    items = (live.get("items") or {}).get("data") or []
    return any((item["price"].get("recurring") or {}).get("usage_type") == "metered" for item in items)


def subscription_resume(
    *, subscription: Subscription, actor: Actor, reason: str = "", operation: Operation | None = None
) -> Subscription:
    """Undoes a scheduled cancellation, or resumes a paused subscription (decided on Stripe's current state:
    the mirror may not have caught up with a change made a moment ago). A resumed `operation` whose first
    attempt already resumed it answers the subscription as Stripe has it."""
    gateway = subscription_gateway(subscription)
    live = gateway.subscription_retrieve(subscription.stripe_subscription_id)
    state = stripe_state(live)
    if state["status"] == Subscription.Status.PAUSED:
        params: dict[str, Any] = {"billing_cycle_anchor": {"type": "now"}}
        answer = gateway.subscription_resume(
            subscription.stripe_subscription_id,
            params=params,
            idem=operation.stripe_key("resume")
            if operation
            else write_key(subscription, "resume", params, state),
            operation=operation is not None,
        )
    elif state["cancel_at_period_end"]:
        params = {"cancel_at_period_end": False}
        answer = gateway.subscription_update(
            subscription.stripe_subscription_id,
            params=params,
            idem=operation.stripe_key("resume")
            if operation
            else write_key(subscription, "resume", params, state),
            operation=operation is not None,
        )
    elif operation and operation.resumed:
        answer = live  # this operation's first attempt resumed it (its answer was lost)
    else:
        raise Conflict(
            "Nothing to resume: the subscription is neither paused nor scheduled to cancel.",
            code="nothing_to_resume",
        )
    result = apply_now(subscription, answer)
    audited(result, "subscription.resumed", actor, reason, apply_now(subscription, live), result)
    return result
