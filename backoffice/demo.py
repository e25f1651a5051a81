"""The demo's landing page (`make demo` only): where the demo checkout's success and cancel URLs return, saying
what happened — the payment and its checkout, the subscription it started, and what the customer may now use.

Off unless `settings.DEMO_PAGES` (on with DEBUG, never in production): it shows the demo project's customers
without any key. Server-rendered, no script; it reloads itself while Stripe's outcome is still on its way.
"""

import json
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from billing import selectors
from billing.models import CheckoutSession, Payment, Subscription
from billing.services.payment_transitions import payment_refresh
from catalog.models import Price
from core.errors import NotFound, plain_view
from core.money import money_format
from entitlements.selectors import entitlements_list
from projects.models import Project
from projects.selectors import project_get

DEMO_SLUG = "demo"
# How often the page reloads while the payment is open or its subscription not mirrored yet.
REFRESH_SECONDS = 2


def _unit_price(price: Price) -> str:
    if price.unit_amount is None:
        return f"{price.tiers_mode} tiers"  # a tiered price has no one unit amount
    return money_format(price.unit_amount, price.currency)


def _payment_for(project: Project, request: HttpRequest) -> Payment | None:
    session_id = request.GET.get("session_id", "")
    if session_id:
        session = selectors.checkout_session_by_stripe_id(project=project, stripe_session_id=session_id)
        return session.payment if session is not None else None
    customer = request.GET.get("customer", "")
    return selectors.payment_search(project=project, customer=customer).first() if customer else None


def _subscription_for(project: Project, payment: Payment) -> Subscription | None:
    if not payment.stripe_subscription_id:
        return None
    return (
        selectors.subscription_list(project=project, customer=payment.customer.external_id)
        .filter(stripe_subscription_id=payment.stripe_subscription_id)
        .first()
    )


def _plan_lines(subscription: Subscription | None) -> list[dict[str, Any]]:
    """Every item of the subscription (the base plan, add-ons, metered prices) in Stripe's order, as the page names
    them; a subscription mirrored without its items names its primary price."""
    if subscription is None:
        return []
    items = list(subscription.items.select_related("price", "product"))
    pairs = [(item.product, item.price, item.quantity) for item in items] or [
        (subscription.product, subscription.price, subscription.quantity)
    ]
    return [
        {"product": product.name, "price": price, "amount": _unit_price(price), "quantity": quantity}
        for product, price, quantity in pairs
    ]


def _entitlement_rows(project: Project, external_id: str) -> list[dict[str, Any]]:
    rows = []
    for entry in entitlements_list(project=project, external_id=external_id)["entitlements"]:
        kind = entry["type"]
        if kind == "credits":
            amount = f"{entry['balance']:,} left"
        elif kind in ("metered", "allocation"):
            limit = "unlimited" if entry["limit"] is None else f"{entry['limit']:,}"
            amount = f"{entry['used'] or 0:,} of {limit} used"
        elif kind == "static":
            amount = json.dumps(entry["value"])
        else:
            amount = ""
        rows.append(
            {"feature": entry["feature"], "type": kind, "enabled": entry["enabled"], "amount": amount}
        )
    return rows


def _session_for(project: Project, payment: Payment) -> CheckoutSession | None:
    try:
        return selectors.checkout_session_for_payment(project=project, payment=payment)
    except CheckoutSession.DoesNotExist:  # a payment of the intent flow
        return None


@plain_view("GET")  # a page Stripe redirects the browser to: other methods 405 in the envelope, no CSRF page
def demo_return(request: HttpRequest) -> HttpResponse:
    if not settings.DEMO_PAGES:
        raise Http404("Demo pages are off.")
    try:
        project = project_get(id_or_slug=DEMO_SLUG)
    except NotFound as exc:
        raise Http404("No demo project: run make demo.") from exc
    payment = _payment_for(project, request)
    if payment is None:
        raise Http404("No such demo checkout.")
    payment = payment_refresh(payment=payment)  # Stripe's outcome, even before its webhook arrives
    subscription = _subscription_for(project, payment)
    # A paid subscription checkout whose subscription Stripe's webhook has not brought yet.
    unmirrored = bool(payment.stripe_subscription_id) and subscription is None
    # The cancel URL names the customer (Stripe fills the session's id in success URLs only): it speaks of a
    # canceled checkout only while the customer's latest payment is still open.
    canceled = request.GET.get("canceled") == "1" and payment.is_open
    external_id = payment.customer.external_id
    context = {
        "payment": payment,
        "amount": money_format(payment.amount, payment.currency),
        "session": _session_for(project, payment),
        "subscription": subscription,
        "plan_lines": _plan_lines(subscription),
        "customer": external_id,
        "entitlements": _entitlement_rows(project, external_id),
        "canceled": canceled,
        "waiting": (payment.is_open or unmirrored) and not canceled,
        "refresh_seconds": REFRESH_SECONDS,
        "base": request.build_absolute_uri("/").rstrip("/"),
    }
    return TemplateResponse(request, "demo/return.html", context)
