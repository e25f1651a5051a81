"""The Stripe billing portal: one configuration per project offering only that project's prices."""

from collections import defaultdict
from typing import Any

from catalog.models import Price
from core.errors import Conflict
from core.idempotency import Operation
from customers import selectors as customer_selectors
from projects.models import Project
from stripe_gateway.gateway import gateway_for, idempotency_key


def portal_eligibility(*, project: Project, customer_external_id: str) -> tuple[bool, str | None]:
    customer = customer_selectors.customer_find(project=project, external_id=customer_external_id)
    if customer is None:
        return False, "unknown_customer"
    if not customer.stripe_customer_id:
        return False, "no_billing_account"
    return True, None


def _portal_rules(project: Project) -> dict[str, Any]:
    """The project's proration rules as far as Stripe's portal configuration takes them: one
    `proration_behavior` for what it changes now (the upgrade rule's: `none` for `now_no_proration`, else
    `create_prorations`), and `schedule_at_period_end` conditions for what it defers — a downgrade
    (`decreasing_item_amount`) and a shorter billing interval (`shortening_interval`; Stripe's portal has no
    condition for a longer one, nor for an upgrade: those apply now)."""
    rule = Project.ProrationRule
    conditions = []
    if project.proration_downgrade == rule.PERIOD_END:
        conditions.append({"type": "decreasing_item_amount"})
    if project.proration_interval_change == rule.PERIOD_END:
        conditions.append({"type": "shortening_interval"})
    return {
        "proration_behavior": "none"
        if project.proration_upgrade == rule.NOW_NO_PRORATION
        else "create_prorations",
        "schedule_at_period_end": {"conditions": conditions},
    }


def _configuration_params(project: Project) -> dict[str, Any]:
    """Every active licensed recurring price of each public product (the plans the project's pricing page
    sells), both intervals included: a customer switches plan or monthly ↔ yearly in the portal (Stripe hides
    other currencies; another interval restarts the period and is charged at once, with the unused time
    credited). A product that is not public, or has no such price, is not offered; without any, the portal
    offers no plan switch. `promotion_code` is never an allowed update: the portal's code field takes any
    active code of the Stripe account, on the platform's shared one another project's too."""
    prices: dict[str, list[str]] = defaultdict(list)
    for price in Price.objects.filter(
        project=project,
        active=True,
        type=Price.Type.RECURRING,
        usage_type=Price.UsageType.LICENSED,
        product__public=True,
    ).select_related("product"):
        if price.stripe_price_id and price.product.stripe_product_id and price.product.active:
            prices[price.product.stripe_product_id].append(price.stripe_price_id)
    products = [{"product": product, "prices": sorted(ids)} for product, ids in sorted(prices.items())]
    return {
        "business_profile": {"headline": project.name},
        "features": {
            "customer_update": {"enabled": False},
            "invoice_history": {"enabled": True},
            "payment_method_update": {"enabled": True},
            "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
            "subscription_update": {
                "enabled": bool(products),
                "default_allowed_updates": ["price", "quantity"] if products else [],
                **_portal_rules(project),
                **({"products": products} if products else {}),
            },
        },
        "metadata": {"tollgate_project": project.pk},
    }


def portal_configuration_sync(*, project: Project) -> str:
    """Creates or updates the project's portal configuration from its current catalog; returns its id."""
    gateway = gateway_for(project)
    configuration = gateway.portal_configuration_upsert(
        configuration_id=project.stripe_portal_configuration_id,
        params=_configuration_params(project),
        idem=idempotency_key("portal-configuration", project.pk, "create"),
    )
    if not project.stripe_portal_configuration_id:
        Project.objects.filter(pk=project.pk, stripe_portal_configuration_id="").update(
            stripe_portal_configuration_id=configuration["id"]
        )
        project.stripe_portal_configuration_id = configuration["id"]
    return str(configuration["id"])


def portal_session_create(
    *, project: Project, customer_external_id: str, return_url: str, operation: Operation | None = None
) -> str:
    """The one-time URL of a portal session for the customer; a retry of the same `operation` (a tenant's
    Idempotency-Key) gets the session its first attempt made."""
    eligible, reason = portal_eligibility(project=project, customer_external_id=customer_external_id)
    if not eligible:
        if reason == "unknown_customer":
            customer_selectors.customer_get(
                project=project, external_id=customer_external_id, param="customer"
            )
        raise Conflict(
            "This customer has nothing to manage yet (no purchase).",
            code=reason or "not_eligible",
            param="customer",
        )
    customer = customer_selectors.customer_get(
        project=project, external_id=customer_external_id, param="customer"
    )
    configuration = portal_configuration_sync(project=project)
    session = gateway_for(project).portal_session_create(
        customer=customer.stripe_customer_id,
        return_url=return_url,
        configuration=configuration,
        idem=operation.stripe_key("portal-session") if operation else "",
    )
    return str(session["url"])
