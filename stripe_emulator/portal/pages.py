"""The hosted customer portal: ``GET /portal/{session}`` (server-rendered HTML, every value escaped) and its
form posts, each answered with a 303 back to the page:

* ``POST /portal/{session}/subscriptions/{sub}/cancel`` — cancel per the configuration's
  ``subscription_cancel.mode`` (``at_period_end`` sets ``cancel_at_period_end``; ``immediately`` cancels,
  with prorations if its ``proration_behavior`` is ``create_prorations``);
* ``POST /portal/{session}/subscriptions/{sub}/renew`` — undo a scheduled cancellation;
* ``POST /portal/{session}/subscriptions/{sub}/update`` with ``price=<id>`` — switch a one-item
  subscription to another price the configuration allows, with its ``proration_behavior``.

Each action calls the same backend methods as the API, so the same events fire. No API key: the session id
is the capability, as with Stripe's portal links.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from stripe_emulator.core.account import Account
from stripe_emulator.core.errors import InvalidRequestError, ResourceMissing, StripeError
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.core.store import StripeObject
from stripe_emulator.subscriptions.invoices import InvoicesBackend
from stripe_emulator.subscriptions.models import SubscriptionsBackend
from stripe_emulator.subscriptions.models.base import money

e = html.escape


def _session(req: Request) -> tuple[Account, StripeObject]:
    found = req.emulator.locate(req.path_params["id"])
    if found is None or found[1].get("object") != "billing_portal.session":
        raise ResourceMissing("billing_portal.session", req.path_params["id"])
    return found


def _date(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d") if ts else "—"


def _allowed_prices(config: StripeObject) -> list[str]:
    update = config["features"]["subscription_update"]
    if not update["enabled"] or "price" not in update["default_allowed_updates"]:
        return []
    return [price for entry in update["products"] for price in entry["prices"]]


def _price_label(account: Account, price: StripeObject) -> str:
    product = account.store.get("product", price["product"])
    name = product["name"] if product else price["product"]
    recurring = price["recurring"] or {}
    amount = money(int(price["unit_amount"] or 0), price["currency"])
    return f"{name} — {amount} / {recurring.get('interval', 'once')}"


def portal_page(req: Request) -> Response:
    account, session = _session(req)
    with account.lock:
        body = _render(account, session, req.params.string("message"))
    return Response(200, body.encode(), {"Content-Type": "text/html; charset=utf-8"})


def _render(account: Account, session: StripeObject, message: str | None) -> str:
    config = account.store.require("billing_portal.configuration", session["configuration"])
    features = config["features"]
    customer = account.store.get("customer", session["customer"]) or {}
    base = f"/portal/{quote(session['id'])}"
    subs = account.backend(SubscriptionsBackend).subscription_list(customer=session["customer"])
    allowed = _allowed_prices(config)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Billing portal</title></head><body>",
        f"<h1>{e(config['business_profile']['headline'] or 'Manage your subscription')}</h1>",
        f"<p class='customer'>{e(str(customer.get('email') or customer.get('name') or session['customer']))}</p>",
    ]
    if message:
        parts.append(f"<p class='message' role='alert'>{e(message)}</p>")
    parts.append("<h2>Subscriptions</h2>")
    if not subs:
        parts.append("<p>No active subscriptions.</p>")
    for sub in subs:
        parts.append(_render_subscription(account, sub, features, allowed, base))
    if features["invoice_history"]["enabled"]:
        parts.append("<h2>Invoices</h2><ul class='invoices'>")
        invoices = account.backend(InvoicesBackend).invoice_list(customer=session["customer"])
        for invoice in invoices:
            if invoice["status"] == "draft":
                continue
            amount = money(invoice["total"], invoice["currency"])
            parts.append(
                f"<li><a href='{e(str(invoice['hosted_invoice_url']))}'>{e(str(invoice['number']))}</a> "
                f"{e(_date(invoice['created']))} {e(amount)} <span class='status'>{e(invoice['status'])}</span></li>"
            )
        parts.append("</ul>")
    parts.append(f"<p><a class='return' href='{e(session['return_url'])}'>Return</a></p></body></html>")
    return "".join(parts)


def _render_subscription(
    account: Account, sub: StripeObject, features: dict[str, Any], allowed: list[str], base: str
) -> str:
    sid = e(sub["id"])
    items = sub["items"]["data"]
    _, end = account.backend(SubscriptionsBackend)._period(sub)
    lines = "".join(
        f"<li>{e(_price_label(account, i['price']))} × {e(str(i['quantity'] or 1))}</li>" for i in items
    )
    parts = [
        f"<section class='subscription' id='{sid}'>",
        f"<ul>{lines}</ul>",
        f"<p>Status: <strong class='status'>{e(sub['status'])}</strong></p>",
    ]
    if sub["cancel_at_period_end"]:
        parts.append(f"<p class='cancel-at'>Cancels on {e(_date(sub['cancel_at'] or end))}</p>")
    else:
        parts.append(f"<p class='period-end'>Renews on {e(_date(end))}</p>")
    action = f"{base}/subscriptions/{quote(sub['id'])}"
    live = sub["status"] not in ("canceled", "incomplete_expired")
    if live and sub["cancel_at_period_end"]:
        parts.append(
            f"<form method='post' action='{e(action)}/renew'><button>Renew subscription</button></form>"
        )
    elif live and features["subscription_cancel"]["enabled"]:
        mode = features["subscription_cancel"]["mode"]
        label = "Cancel immediately" if mode == "immediately" else "Cancel at period end"
        parts.append(f"<form method='post' action='{e(action)}/cancel'><button>{e(label)}</button></form>")
    if live and allowed and len(items) == 1:
        current = items[0]["price"]["id"]
        options = "".join(
            f"<option value='{e(price_id)}'>{e(_price_label(account, price))}</option>"
            for price_id in allowed
            if price_id != current
            for price in [account.store.get("price", price_id)]
            if price is not None and price["active"]
        )
        if options:
            parts.append(
                f"<form method='post' action='{e(action)}/update'><select name='price'>{options}</select>"
                "<button>Switch plan</button></form>"
            )
    parts.append("</section>")
    return "".join(parts)


def _act(req: Request, verb: str) -> Response:
    account, session = _session(req)
    sub_id = req.path_params["sub"]
    message = None
    with account.lock:
        config = account.store.require("billing_portal.configuration", session["configuration"])
        features = config["features"]
        backend = account.backend(SubscriptionsBackend)
        sub = backend.subscription_require(sub_id)
        if sub["customer"] != session["customer"]:
            raise ResourceMissing("subscription", sub_id)
        try:
            if verb == "cancel":
                cancel = features["subscription_cancel"]
                if not cancel["enabled"]:
                    raise InvalidRequestError("Cancelling is not enabled in this portal.")
                if cancel["mode"] == "immediately":
                    backend.subscription_cancel(
                        sub_id, prorate_=cancel["proration_behavior"] == "create_prorations"
                    )
                else:
                    backend.subscription_update(sub_id, changes={"cancel_at_period_end": True})
                message = "Your subscription has been cancelled."
            elif verb == "renew":
                backend.subscription_update(sub_id, changes={"cancel_at_period_end": False})
                message = "Your subscription has been renewed."
            else:
                price = req.params.string("price", required=True) or ""
                if price not in _allowed_prices(config):
                    raise InvalidRequestError("That plan is not available in this portal.", param="price")
                items = sub["items"]["data"]
                if len(items) != 1:
                    raise InvalidRequestError("Only single-item subscriptions can switch plans here.")
                backend.subscription_update(
                    sub_id,
                    items=[{"id": items[0]["id"], "price": price}],
                    proration_behavior=features["subscription_update"]["proration_behavior"],
                )
                message = "Your plan has been updated."
        except StripeError as exc:
            message = exc.message
    location = f"/portal/{quote(session['id'])}?message={quote(message or '')}"
    return Response(303, b"", {"Location": location, "Content-Type": "text/html; charset=utf-8"})


def portal_cancel(req: Request) -> Response:
    return _act(req, "cancel")


def portal_renew(req: Request) -> Response:
    return _act(req, "renew")


def portal_update(req: Request) -> Response:
    return _act(req, "update")
