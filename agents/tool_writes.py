"""The write tools: checkout and portal links, grants and their revocation — each through the service the REST
API calls, on the key's project, with the key as the actor of what is audited."""

from datetime import datetime
from typing import Any

from agents.models import AgentKey
from agents.tool_reads import customer_of
from billing import selectors as billing_selectors
from billing.models import Payment
from billing.representations import CheckoutSessionOutput
from billing.services.checkout import checkout_start
from billing.services.payment_requests import redirect_urls_validate
from billing.services.portal import portal_session_create
from catalog import selectors as catalog_selectors
from catalog.selectors import feature_by_key
from entitlements import selectors as entitlement_selectors
from entitlements.apis.grants import GrantOutput
from entitlements.services.grants import grant_create, grant_delete


def checkout_link_create(key: AgentKey, arguments: dict[str, Any]) -> dict[str, Any]:
    """A Stripe Checkout for one price (a subscription for a recurring price, a purchase for a one-time one)."""
    project = key.project
    customer = customer_of(key, arguments["customer"])
    price = catalog_selectors.price_get(project=project, key_or_id=arguments["price"], param="price")
    payment = checkout_start(
        project=project,
        kind=Payment.Type.SUBSCRIPTION if price.is_recurring else Payment.Type.ONE_TIME,
        customer=customer.external_id,
        success_url=arguments["success_url"],
        cancel_url=arguments["cancel_url"],
        items=[(price.pk, 1)],
    )
    session = billing_selectors.checkout_session_for_payment(project=project, payment=payment)
    return dict(CheckoutSessionOutput(session).data)


def portal_link_create(key: AgentKey, arguments: dict[str, Any]) -> dict[str, Any]:
    customer = customer_of(key, arguments["customer"])
    redirect_urls_validate(project=key.project, return_url=arguments["return_url"])
    url = portal_session_create(
        project=key.project, customer_external_id=customer.external_id, return_url=arguments["return_url"]
    )
    return {"url": url}


def grant_create_tool(key: AgentKey, arguments: dict[str, Any]) -> dict[str, Any]:
    customer = customer_of(key, arguments["customer"])
    expires_at = arguments.get("expires_at")
    grant = grant_create(
        project=key.project,
        actor=key.actor(),
        external_id=customer.external_id,
        feature=feature_by_key(project=key.project, key=arguments["feature"]),
        reason=arguments["reason"],
        value=arguments.get("value"),
        value_given="value" in arguments,
        expires_at=datetime.fromisoformat(expires_at) if expires_at is not None else None,
    )
    return dict(GrantOutput(grant).data)


def grant_revoke(key: AgentKey, arguments: dict[str, Any]) -> dict[str, Any]:
    """Ends a grant now (`DELETE /entitlements/grants/{id}`)."""
    grant = entitlement_selectors.grant_get(project=key.project, grant_id=arguments["grant"])
    return dict(GrantOutput(grant_delete(grant=grant, actor=key.actor(), reason=arguments["reason"])).data)
