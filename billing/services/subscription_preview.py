"""The invoice a tenant's change would create, from Stripe's invoice preview of that very update: checked as
the change is checked, and nothing written or redeemed at Stripe or here.
"""

from typing import Any

from billing.models import Subscription
from billing.services.discounts import subscription_discount_params
from billing.services.invoices import invoice_lines
from billing.services.subscription_change_checks import (
    check_change,
    check_items,
    check_one_interval,
    check_one_interval_live,
    check_taxable,
    new_products_check,
)
from billing.services.subscription_changes import change_rule, items_update
from billing.services.subscription_items import ItemSpec
from billing.services.subscription_stripe_writes import primary_state, subscription_gateway
from catalog.models import Price
from core.errors import InvalidRequest
from projects.models import Project
from stripe_gateway.gateway import from_timestamp, stripe_id


def subscription_preview(
    *,
    subscription: Subscription,
    price: Price | None = None,
    quantity: int | None = None,
    items: list[ItemSpec] | None = None,
    proration_behavior: str | None = None,
    promotion_code: str | None = None,
    automatic_tax: bool | None = None,
) -> dict[str, Any]:
    """What `subscription_change` with the same input would invoice, from Stripe's invoice preview of that very
    update (its prorations, or the next renewal with them), with the discount of `promotion_code` (checked as
    the change checks it) and Stripe Tax on or off as `automatic_tax` asks: `{amount_due, currency, subtotal,
    discount, tax, total, lines}`. Reads only — nothing is written or redeemed at Stripe or here, so nothing is
    audited.

    It says what the project's proration rule will do (`rule`: `now_prorate`, `now_no_proration`,
    `period_end`, or `requested` when the body gives `proration_behavior`; `change`: the direction): a change
    deferred to the period's end invoices nothing now (`amount_due` 0, no lines) and takes effect at
    `effective_at` (the period's end; null for an immediate change)."""
    kind, rule = change_rule(
        subscription, price=price, quantity=quantity, items=items, proration_behavior=proration_behavior
    )
    if proration_behavior is None:
        proration_behavior = "none" if rule == Project.ProrationRule.NOW_NO_PRORATION else "create_prorations"
    deferred = rule == Project.ProrationRule.PERIOD_END
    if deferred and promotion_code:
        raise InvalidRequest(
            "This change takes effect at the end of the period (the project's proration rule): apply a "
            "promotion_code in a change of its own.",
            code="parameter_conflict",
            param="promotion_code",
        )
    decided = {"rule": rule, "change": kind, "effective_at": None}
    if items is not None:
        check_items(subscription, items)
        new_products_check(subscription, items, [f"items[{index}].price" for index in range(len(items))])
    else:
        check_change(subscription, price)
        check_one_interval(subscription, price)
        if price is not None:
            new_products_check(subscription, [ItemSpec(price=price, quantity=quantity)], ["price"])
    if automatic_tax:
        check_taxable(subscription, price, items)
    discount = subscription_discount_params(
        project=subscription.project,
        promotion_code=promotion_code,
        customer_external_id=subscription.customer.external_id,
        currency=subscription.price.currency,
    )
    gateway = subscription_gateway(subscription)
    live = gateway.subscription_retrieve(subscription.stripe_subscription_id)
    if deferred:
        item = ((live.get("items") or {}).get("data") or [{}])[0]
        nothing = {"amount_due": 0, "subtotal": 0, "discount": 0, "tax": 0, "total": 0, "lines": []}
        return {
            **nothing,
            "currency": subscription.price.currency,
            **decided,
            "effective_at": from_timestamp(item.get("current_period_end")),
        }
    if items is not None:
        update, _ = items_update(subscription, live, items)
    else:
        item_id, live_price, live_quantity = primary_state(subscription, live)
        check_one_interval_live(live, item_id, price)
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
        **decided,
    }
