"""A subscription created server-side (`POST /subscriptions`): on the customer's saved default payment method,
with `payment_behavior=error_if_incomplete`, so a declined first payment leaves nothing at Stripe (402) and
nothing here. The created subscription is mirrored from Stripe's answer at once, and audited.
"""

import hashlib
import json
from typing import Any

from django.db import transaction

from billing import selectors
from billing.models import Subscription
from billing.services.discounts import subscription_discount_params
from billing.services.subscription_items import (
    ItemSpec,
    already_subscribed_check,
    customer_subscribing,
    primary_spec,
)
from billing.services.subscription_mirror import Ambiguous, subscription_apply, subscription_refetch_and_apply
from billing.services.subscription_stripe_writes import audit_state
from catalog.models import Price
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidRequest
from core.idempotency import Operation
from customers import selectors as customer_selectors
from customers.models import Customer
from projects.models import Project
from stripe_gateway.gateway import gateway_for, idempotency_key, stripe_account_of, stripe_id


def _no_payment_method() -> InvalidRequest:
    return InvalidRequest(
        "The customer has no saved default payment method: subscribe them through Checkout instead.",
        code="no_payment_method",
        param="customer",
    )


def _create_key(customer: Customer, params: dict[str, Any]) -> str:
    """The Stripe idempotency key of the creation: our customer, the request, and the customer's subscriptions
    known here. A retry whose answer was lost (nothing mirrored yet) carries the same key and gets Stripe's
    replay; once a subscription is mirrored (even if since canceled), a new request is a new key."""
    known = sorted(Subscription.objects.filter(customer=customer).values_list("pk", flat=True))
    digest = hashlib.sha256(json.dumps([params, known], sort_keys=True).encode()).hexdigest()[:32]
    return idempotency_key("subscription", "create", customer.pk, digest)


def subscription_create(
    *,
    project: Project,
    actor: Actor,
    customer: str,
    items: list[ItemSpec],
    several: bool,
    trial_days: int | None = None,
    proration_behavior: str | None = None,
    promotion_code: str | None = None,
    automatic_tax: bool = False,
    reason: str = "",
    operation: Operation | None = None,
) -> Subscription:
    """Creates the subscription at Stripe for `customer` (their external id) and returns its mirror. `several`:
    the request gave `items` (refusals name `items[i]`), not `price`. `automatic_tax`: Stripe Tax on its
    invoices (every price needs a tax behavior, Stripe the customer's address). Refused before any write: 404
    an unknown customer, 409 `currency_mismatch`, 409 `already_subscribed` (a live subscription has one of the
    products), 400 `tax_behavior_unspecified`, `no_payment_method`, `promotion_code_invalid`; Stripe's 400
    `customer_tax_location_invalid` and a decline (402) leave nothing created. `operation` (a tenant's
    Idempotency-Key) keys the creation at Stripe; when it is resumed and its first attempt created the
    subscription (its answer lost), that subscription is answered, not refused as `already_subscribed`."""
    if automatic_tax:
        for spec in items:
            if spec.price.tax_behavior == Price.TaxBehavior.UNSPECIFIED:
                raise InvalidRequest(
                    f"{spec.price.key!r} has no tax_behavior: automatic tax needs `inclusive` or `exclusive` "
                    "on every price.",
                    code="tax_behavior_unspecified",
                    param="automatic_tax",
                )
    owner = customer_selectors.customer_get(project=project, external_id=customer, param="customer")
    currency = items[0].price.currency
    if owner.currency and owner.currency != currency:
        raise Conflict(
            f"This customer pays in {owner.currency.upper()}; the request is in {currency.upper()}.",
            code="currency_mismatch",
            param="items[0].price" if several else "price",
        )
    if operation is not None and operation.resumed and owner.stripe_customer_id:
        made = _made_by(project=project, owner=owner, operation=operation)
        if made is not None:
            return _audited_creation(project, owner, made, currency, actor, reason)
    params = [f"items[{index}].price" if several else "price" for index in range(len(items))]
    _ended_blockers_refresh(project=project, owner=owner, items=items)
    already_subscribed_check(customer=owner, specs=items, params=params)  # at once, and again under the lock
    discount = subscription_discount_params(
        project=project, promotion_code=promotion_code, customer_external_id=customer, currency=currency
    )
    if not owner.stripe_customer_id:
        raise _no_payment_method()
    with customer_subscribing(owner):
        already_subscribed_check(customer=owner, specs=items, params=params)
        subscription = _create_at_stripe(
            project=project,
            owner=owner,
            items=items,
            trial_days=trial_days,
            proration_behavior=proration_behavior,
            automatic_tax=automatic_tax,
            discount=discount,
            operation=operation,
        )
    return _audited_creation(project, owner, subscription, currency, actor, reason)


def _ended_blockers_refresh(*, project: Project, owner: Customer, items: list[ItemSpec]) -> None:
    """Reads from Stripe the subscriptions the mirror says block this one: a subscription canceled a moment ago
    (its cancel answered, its events still on the way) is mirrored as ended first, so the tenant's next request
    is not refused `already_subscribed` by it. One read per blocking subscription, only when one blocks."""
    blocking = {
        live.stripe_subscription_id
        for spec in items
        if (live := selectors.live_subscription_to(customer=owner, product=spec.price.product)) is not None
        and live.stripe_subscription_id
    }
    for stripe_subscription_id in sorted(blocking):
        subscription_refetch_and_apply(
            account=stripe_account_of(project),
            gateway=gateway_for(project),
            stripe_subscription_id=stripe_subscription_id,
            event_created=0,
        )


def _audited_creation(
    project: Project, owner: Customer, subscription: Subscription, currency: str, actor: Actor, reason: str
) -> Subscription:
    with transaction.atomic():
        if not owner.currency:
            Customer.objects.filter(pk=owner.pk, currency="").update(currency=currency)
        audit_record(
            actor=actor,
            action="subscription.created",
            target=subscription,
            project=project,
            reason=reason,
            before=None,
            after=audit_state(subscription),
        )
    return subscription


def _create_at_stripe(
    *,
    project: Project,
    owner: Customer,
    items: list[ItemSpec],
    trial_days: int | None,
    proration_behavior: str | None,
    automatic_tax: bool,
    discount: dict[str, Any],
    operation: Operation | None,
) -> Subscription:
    """The Stripe subscription created on the saved default card, and its mirror (applied from the answer)."""
    gateway = gateway_for(project)
    stripe_customer = gateway.customer_retrieve(owner.stripe_customer_id)
    if not stripe_id((stripe_customer.get("invoice_settings") or {}).get("default_payment_method")):
        raise _no_payment_method()

    trial = trial_days if trial_days is not None else primary_spec(items).price.trial_days
    params: dict[str, Any] = {
        "customer": owner.stripe_customer_id,
        "items": [
            {"price": spec.price.stripe_price_id}
            if spec.metered
            else {"price": spec.price.stripe_price_id, "quantity": spec.quantity or 1}
            for spec in items
        ],
        "payment_behavior": "error_if_incomplete",
        "metadata": {
            "tollgate_project": project.pk,
            "tollgate_customer": owner.pk,
            **({"tollgate_operation": operation.identity} if operation else {}),
        },
        **discount,
    }
    if trial:
        params["trial_period_days"] = trial
    if automatic_tax:
        params["automatic_tax"] = {"enabled": True}
    if proration_behavior:
        params["proration_behavior"] = proration_behavior
    idem = operation.stripe_key("subscription-create") if operation else _create_key(owner, params)
    return _mirrored(project, gateway.subscription_create(params=params, idem=idem))


def _made_by(*, project: Project, owner: Customer, operation: Operation) -> Subscription | None:
    """The subscription this operation's first attempt created at Stripe (`metadata.tollgate_operation`),
    mirrored; None when that attempt created none. Read from Stripe: the mirror may not know it yet."""
    for candidate in gateway_for(project).list_all(
        "subscriptions", {"customer": owner.stripe_customer_id, "status": "all", "limit": 100}
    ):
        if (candidate.get("metadata") or {}).get("tollgate_operation") == operation.identity:
            return _mirrored(project, candidate)
    return None


def _mirrored(project: Project, answer: dict[str, Any]) -> Subscription:
    gateway = gateway_for(project)
    account = stripe_account_of(project)
    try:
        mirrored = subscription_apply(
            account=account, stripe_subscription=answer, event_created=int(answer["created"])
        )
    except Ambiguous:  # its own events, applied meanwhile, said otherwise in the same second
        mirrored = subscription_refetch_and_apply(
            account=account,
            gateway=gateway,
            stripe_subscription_id=answer["id"],
            event_created=int(answer["created"]),
        )
    if mirrored is None:
        raise RuntimeError(f"Subscription {answer['id']} was created but could not be mirrored.")
    return Subscription.objects.select_related("customer", "price", "product", "project").get(pk=mirrored.pk)
