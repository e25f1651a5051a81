"""The hosted customer portal: ``GET /portal/{session}`` (server-rendered HTML in the layout every hosted page
shares, :mod:`stripe_emulator.core.html`; every value escaped) and its form posts, each answered with a 303 back to the page:

* ``POST /portal/{session}/subscriptions/{sub}/cancel`` — cancel per the configuration's
  ``subscription_cancel.mode`` (``at_period_end`` sets ``cancel_at_period_end``; ``immediately`` cancels,
  with prorations if its ``proration_behavior`` is ``create_prorations``);
* ``POST /portal/{session}/subscriptions/{sub}/renew`` — undo a scheduled cancellation;
* ``POST /portal/{session}/subscriptions/{sub}/update`` with ``price=<id>`` (the page preselects none: the
  customer chooses; each plan is offered with what it would cost per period) — switch a one-item
  subscription to another price the configuration allows (another interval too: the period restarts and is
  invoiced at once), with its ``proration_behavior`` and the item's quantity kept; a switch whose payment is
  declined changes nothing. A switch meeting one of ``subscription_update.schedule_at_period_end``'s
  conditions (``decreasing_item_amount``, ``shortening_interval``) is scheduled instead: the subscription's
  schedule (made from it) gets a next phase with the new price from the current period's end.

Each action calls the same backend methods as the API, so the same events fire. No API key: the session id
is the capability, as with Stripe's portal links.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

from stripe_emulator.core.account import Account
from stripe_emulator.core.context import test_clock_scope
from stripe_emulator.core.errors import InvalidRequestError, ResourceMissing, StripeError
from stripe_emulator.core.html import format_amount, format_date, page, per_interval, pill
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.core.store import StripeObject
from stripe_emulator.products.models import ProductsBackend, is_metered
from stripe_emulator.subscriptions.invoices import InvoicesBackend
from stripe_emulator.subscriptions.models import SubscriptionsBackend
from stripe_emulator.subscriptions.schedules import SchedulesBackend
from stripe_emulator.tax import customer_location, rule_for, tax_amount, tax_labels
from stripe_emulator.testclocks.models import customer_clock_scope

e = html.escape


def _session(req: Request) -> tuple[Account, StripeObject]:
    found = req.emulator.locate(req.path_params["id"])
    if found is None or found[1].get("object") != "billing_portal.session":
        raise ResourceMissing("billing_portal.session", req.path_params["id"])
    return found


def _allowed_prices(config: StripeObject) -> list[str]:
    update = config["features"]["subscription_update"]
    if not update["enabled"] or "price" not in update["default_allowed_updates"]:
        return []
    return [price for entry in update["products"] for price in entry["prices"]]


def _price_label(account: Account, price: StripeObject) -> str:
    product = account.store.get("product", price["product"])
    name = product["name"] if product else price["product"]
    every = per_interval(price["recurring"]) or " once"
    if price["billing_scheme"] == "tiered":
        return f"{name} — {price['tiers_mode']} tiers{every}"
    return f"{name} — {format_amount(int(price['unit_amount'] or 0), price['currency'])}{every}"


def _offer_label(account: Account, sub: StripeObject, price: StripeObject, quantity: int) -> str:
    """A plan offered to switch to, with what the customer would pay for it each period: the price for the
    quantity the switch keeps (``price_amount``: per unit, tiers, packages) and, on a subscription with automatic
    tax and a known country, its tax (by ``tax_amount``, as the renewal invoice taxes it)."""
    product = account.store.get("product", price["product"])
    name = product["name"] if product else price["product"]
    every = per_interval(price["recurring"])
    currency = price["currency"]
    if is_metered(price):
        unit = format_amount(price["unit_amount"], currency) if price["unit_amount"] is not None else "usage"
        return f"{name} — {unit} per unit used, billed{every.replace('/', ' per ')}"
    amount = account.backend(ProductsBackend).price_amount(price, quantity)
    country = customer_location(account, sub["customer"]) if sub["automatic_tax"]["enabled"] else None
    if country is not None and price.get("tax_behavior") != "inclusive":
        amount += tax_amount(amount, percentage=rule_for(country).percentage, inclusive=False)
    label = f"{name} — {format_amount(amount, currency)}{every}"
    if quantity != 1:
        transform = price.get("transform_quantity")
        if price["billing_scheme"] == "tiered":
            detail = f"{price['tiers_mode']} tiers"
        elif transform:
            detail = f"{format_amount(price['unit_amount'], currency)} per {transform['divide_by']}"
        else:
            detail = f"{quantity} × {format_amount(price['unit_amount'], currency)}"
        label += f" for {quantity} ({detail})"
    return label + (" incl. tax" if country is not None else "")


def _interval(price: StripeObject) -> tuple[str, int] | None:
    recurring = price.get("recurring")
    return (recurring["interval"], int(recurring.get("interval_count") or 1)) if recurring else None


def _offered(account: Account, price_id: str, current: StripeObject) -> StripeObject | None:
    """The configured price `price_id` if the subscription on `current` can switch to it, else None: an active
    recurring price, of an active product, in the subscription's currency (Stripe's portal hides the others, so
    a plan whose prices are all archived or in another currency is not offered)."""
    price = account.store.get("price", price_id)
    if price is None or not price["active"] or not price.get("recurring"):
        return None
    product = account.store.get("product", price["product"])
    if product is None or not product.get("active", True) or price["currency"] != current["currency"]:
        return None
    return price


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
    who = str(customer.get("email") or customer.get("name") or session["customer"])
    summary = [
        f'<p class="eyebrow">{e(config["business_profile"]["headline"] or "Manage your subscription")}</p>',
        '<p class="amount title">Billing</p>',
        f'<p class="then customer">Signed in as {e(who)}</p>',
        f'<a class="button secondary return" href="{e(session["return_url"])}">← Return</a>',
    ]
    panel = []
    if message:
        panel.append(f'<p class="notice message" role="alert">{e(message)}</p>')
    panel.append("<section><h2>Current subscriptions</h2>")
    if not subs:
        panel.append('<p class="muted">No active subscriptions.</p>')
    for sub in subs:
        panel.append(_render_subscription(account, sub, features, allowed, base))
    panel.append("</section>")
    if features["invoice_history"]["enabled"]:
        panel.append('<section><h2>Invoice history</h2><ul class="list invoices">')
        invoices = account.backend(InvoicesBackend).invoice_list(customer=session["customer"])
        shown = 0
        for invoice in invoices:
            if invoice["status"] == "draft":
                continue
            shown += 1
            amount = format_amount(invoice["total"], invoice["currency"])
            panel.append(
                f'<li class="row"><span><a href="{e(str(invoice["hosted_invoice_url"]))}">'
                f"{e(format_date(invoice['created']))}</a> "
                f'<span class="muted">{e(str(invoice["number"]))}</span></span>'
                f"<span>{e(amount)}{_tax_note(account, invoice)} {pill(invoice['status'])}</span></li>"
            )
        panel.append("</ul>")
        if not shown:
            panel.append('<p class="muted">No invoices yet.</p>')
        panel.append("</section>")
    return page(title="Billing portal", summary="".join(summary), panel="".join(panel))


def _render_subscription(
    account: Account, sub: StripeObject, features: dict[str, Any], allowed: list[str], base: str
) -> str:
    sid = e(sub["id"])
    items = sub["items"]["data"]
    _, end = account.backend(SubscriptionsBackend)._period(sub)
    lines = "".join(
        f"<li>{e(_price_label(account, i['price']))}"
        + (f" × {e(str(i['quantity']))}" if (i["quantity"] or 1) != 1 else "")
        + "</li>"
        for i in items
    )
    parts = [
        f'<div class="card subscription" id="{sid}">',
        f'<div class="row"><ul class="list plain">{lines}</ul>{pill(sub["status"])}</div>',
    ]
    if sub["status"] == "trialing" and sub.get("trial_end"):
        parts.append(f'<p class="muted trial-end">Trial ends on {e(format_date(sub["trial_end"]))}</p>')
    if sub["cancel_at_period_end"]:
        parts.append(f'<p class="muted cancel-at">Cancels on {e(format_date(sub["cancel_at"] or end))}</p>')
    elif sub["status"] not in ("canceled", "incomplete_expired"):
        parts.append(f'<p class="muted period-end">Renews on {e(format_date(end))}</p>')
    action = f"{base}/subscriptions/{quote(sub['id'])}"
    live = sub["status"] not in ("canceled", "incomplete_expired")
    buttons = []
    if live and allowed and len(items) == 1:
        current = items[0]["price"]
        quantity = int(items[0]["quantity"] or 1)  # what the switch keeps (a metered item has none: 1)
        # Only prices the subscription can switch to: Stripe's portal hides other currencies. Another interval
        # (monthly ↔ yearly) is offered: switching restarts the billing period and is charged at once.
        options = "".join(
            f'<option value="{e(price_id)}">{e(_offer_label(account, sub, price, quantity))}'
            f"{' (billed now, new period starts today)' if _interval(price) != _interval(current) else ''}"
            "</option>"
            for price_id in allowed
            if price_id != current["id"]
            for price in [_offered(account, price_id, current)]
            if price is not None
        )
        if options:
            parts.append(
                f'<form method="post" action="{e(action)}/update"><label for="price-{sid}">Change plan</label>'
                # Nothing preselected: the customer picks the plan (a submit without one changes nothing).
                f'<select id="price-{sid}" name="price" required>'
                f'<option value="" selected disabled>Choose a plan</option>{options}</select>'
                '<button class="button secondary" type="submit">Switch plan</button></form>'
            )
    if live and sub["cancel_at_period_end"]:
        buttons.append(
            f'<form method="post" action="{e(action)}/renew"><button class="button" type="submit">'
            "Renew subscription</button></form>"
        )
    elif live and features["subscription_cancel"]["enabled"]:
        mode = features["subscription_cancel"]["mode"]
        label = "Cancel immediately" if mode == "immediately" else "Cancel at period end"
        buttons.append(
            f'<form method="post" action="{e(action)}/cancel"><button class="button danger" type="submit">'
            f"{e(label)}</button></form>"
        )
    parts.extend(buttons)
    parts.append("</div>")
    return "".join(parts)


def _act(req: Request, verb: str) -> Response:
    account, session = _session(req)
    sub_id = req.path_params["sub"]
    message = None
    # A customer on a test clock acts at the clock's frozen time, as its API requests do.
    with account.lock, test_clock_scope(customer_clock_scope(account, session["customer"])):
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
                price = req.params.string("price") or ""
                if not price:
                    raise InvalidRequestError("Choose a plan to switch to.", param="price")
                items = sub["items"]["data"]
                if (
                    price not in _allowed_prices(config)
                    or _offered(account, price, items[0]["price"]) is None
                ):
                    raise InvalidRequestError("That plan is not available in this portal.", param="price")
                if len(items) != 1:
                    raise InvalidRequestError("Only single-item subscriptions can switch plans here.")
                # Stripe's portal keeps the quantity across a plan switch (3 seats stay 3 seats); the API
                # would reset an item whose price changes without a quantity to 1, so it is always sent
                # (never for a metered price, which takes none).
                switch: dict[str, Any] = {"id": items[0]["id"], "price": price}
                target = account.store.get("price", price)
                if items[0]["quantity"] is not None and target is not None and not is_metered(target):
                    switch["quantity"] = items[0]["quantity"]
                if target is not None and _scheduled(features, items[0], target):
                    _schedule_switch(account, sub, target, switch.get("quantity"))
                    message = "Your plan will change at the end of the current period."
                else:
                    # A switch that is charged now (another interval, or `always_invoice`) applies only once
                    # paid: a declined card leaves the plan as it was and the page shows the card's error.
                    backend.subscription_update(
                        sub_id,
                        items=[switch],
                        proration_behavior=features["subscription_update"]["proration_behavior"],
                        payment_behavior="error_if_incomplete",
                    )
                    message = "Your plan has been updated."
        except StripeError as exc:
            message = exc.message
    location = f"/portal/{quote(session['id'])}?message={quote(message or '')}"
    return Response(303, b"", {"Location": location, "Content-Type": "text/html; charset=utf-8"})


_INTERVAL_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


def _scheduled(features: dict[str, Any], item: StripeObject, target: StripeObject) -> bool:
    """Whether the configuration's ``schedule_at_period_end`` conditions defer this switch to the period's end:
    ``decreasing_item_amount`` (the item would cost less per period) or ``shortening_interval`` (a shorter
    billing interval, yearly → monthly)."""
    conditions = {c["type"] for c in features["subscription_update"]["schedule_at_period_end"]["conditions"]}
    current = item["price"]
    old, new = current.get("recurring") or {}, target.get("recurring") or {}
    if "shortening_interval" in conditions and old and new:
        length = _INTERVAL_DAYS[new["interval"]] * int(new["interval_count"])
        if length < _INTERVAL_DAYS[old["interval"]] * int(old["interval_count"]):
            return True
    if "decreasing_item_amount" in conditions and (old.get("interval"), old.get("interval_count")) == (
        new.get("interval"),
        new.get("interval_count"),
    ):
        return (target.get("unit_amount") or 0) < (current.get("unit_amount") or 0)
    return False


def _schedule_switch(account: Account, sub: StripeObject, target: StripeObject, quantity: int | None) -> None:
    """The switch as a subscription schedule's next phase, from the end of the current one (the subscription's
    schedule, made from it when it has none), as Stripe's portal schedules it."""
    schedules = account.backend(SchedulesBackend)
    schedule = (
        schedules.schedule_require(sub["schedule"])
        if sub.get("schedule")
        else schedules.schedule_from_subscription(sub["id"])
    )
    current = next(
        p for p in schedule["phases"] if p["start_date"] == schedule["current_phase"]["start_date"]
    )
    schedules.schedule_update(
        schedule["id"],
        phases=[
            {"items": [dict(i) for i in current["items"]], "start_date": current["start_date"],
             "end_date": current["end_date"]},
            {"items": [{"price": target["id"], "quantity": quantity}], "iterations": 1},
        ],
        end_behavior="release",
        proration_behavior="none",
        metadata=None,
    )  # fmt: skip


def portal_cancel(req: Request) -> Response:
    return _act(req, "cancel")


def portal_renew(req: Request) -> Response:
    return _act(req, "renew")


def portal_update(req: Request) -> Response:
    return _act(req, "update")


def _tax_note(account: Account, invoice: StripeObject) -> str:
    """`` (incl. VAT (19%) €3.61)`` after an invoice's total when it is taxed."""
    notes = [
        f"{label} {format_amount(value, invoice['currency'])}"
        for label, value in tax_labels(account, invoice)
        if value
    ]
    return f' <span class="muted tax">incl. {html.escape(", ".join(notes))}</span>' if notes else ""
