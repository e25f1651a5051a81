"""Checkout Sessions, wire side: the ``/v1/checkout/sessions`` API, the hosted page, and the completion
controls (JSON for tests, HTML and redirects for a browser posting the page's form with ``ui=html``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stripe_emulator.checkout.models import CheckoutBackend
from stripe_emulator.checkout.models.base import success_redirect
from stripe_emulator.checkout.page import quote_of, render_page
from stripe_emulator.core.account import Account
from stripe_emulator.core.context import test_clock_scope
from stripe_emulator.core.errors import InvalidRequestError, ParameterInvalid, ResourceMissing, StripeError
from stripe_emulator.core.params import Params, merge_metadata
from stripe_emulator.core.render import render
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.coupons.responses import discounts_param
from stripe_emulator.payments.method_types import allowed_payment_method_types
from stripe_emulator.tax import automatic_tax_param, session_tax_breakdown
from stripe_emulator.testclocks.models import customer_clock_scope

ADDRESS_KEYS = ("city", "country", "line1", "line2", "postal_code", "state")

HTML = "text/html; charset=utf-8"
INTERVALS = ("day", "week", "month", "year")
MAX_LINE_ITEMS = 100  # Stripe's limit per Checkout Session

# Checkout's UI modes at the pinned API version (the older `hosted`/`embedded`/`custom` are refused like any
# unknown value).
UI_MODES = ("elements", "embedded_page", "form", "hosted_page")


def _price_data(item: Params) -> dict[str, Any] | None:
    data = item.sub("price_data")
    if data is None:
        return None
    data.only(
        "currency",
        "unit_amount",
        "unit_amount_decimal",
        "product",
        "product_data",
        "recurring",
        "tax_behavior",
    )
    values: dict[str, Any] = {
        "currency": data.currency(required=True),
        "unit_amount": data.integer("unit_amount", minimum=0),
        "unit_amount_decimal": data.string("unit_amount_decimal"),
        "product": data.string("product"),
        "product_data": None,
        "recurring": None,
        "tax_behavior": data.enum("tax_behavior", ("exclusive", "inclusive", "unspecified")),
    }
    if values["unit_amount"] is None and values["unit_amount_decimal"] is None:
        raise InvalidRequestError(
            f"Missing required param: {data.name('unit_amount')}.",
            code="parameter_missing",
            param=data.name("unit_amount"),
        )
    product_data = data.sub("product_data")
    if product_data is not None:
        product_data.only("name", "description", "metadata", "images", "tax_code", "unit_label")
        values["product_data"] = {
            "name": product_data.string("name", required=True),
            "description": product_data.string("description"),
            "metadata": merge_metadata({}, product_data),
            "images": product_data.strings("images", max_items=8),
            "tax_code": product_data.string("tax_code"),
            "unit_label": product_data.string("unit_label"),
        }
    if (values["product"] is None) == (values["product_data"] is None):
        raise InvalidRequestError(
            f"You must specify exactly one of {data.name('product')} or {data.name('product_data')}.",
            param=data.name("product"),
        )
    recurring = data.sub("recurring")
    if recurring is not None:
        recurring.only("interval", "interval_count")
        values["recurring"] = {
            "interval": recurring.enum("interval", INTERVALS, required=True),
            "interval_count": recurring.integer("interval_count", minimum=1),
        }
    return values


def _line_items(p: Params) -> list[dict[str, Any]]:
    items = p.hashes("line_items") or []
    if len(items) > MAX_LINE_ITEMS:
        raise InvalidRequestError(
            f"Invalid array: line_items must contain at most {MAX_LINE_ITEMS} items.", param="line_items"
        )
    parsed = []
    for item in items:
        item.only("price", "price_data", "quantity")
        price = item.string("price")
        price_data = _price_data(item)
        if price is not None and price_data is not None:
            raise InvalidRequestError(
                f"You may only specify one of these parameters: {item.name('price')}, {item.name('price_data')}.",
                param=item.name("price_data"),
            )
        parsed.append(
            {
                "price": price,
                "price_data": price_data,
                # Required but for a metered price (which takes none): checked once the price is known.
                "quantity": item.integer("quantity", minimum=1, maximum=999_999),
            }
        )
    return parsed


def checkout_session_create(req: Request) -> Response:
    p = req.params
    p.only(
        "allow_promotion_codes",
        "allowed_payment_method_types",
        "automatic_tax",
        "billing_address_collection",
        "cancel_url",
        "client_reference_id",
        "currency",
        "discounts",
        "customer",
        "customer_creation",
        "customer_email",
        "customer_update",
        "expires_at",
        "line_items",
        "locale",
        "metadata",
        "mode",
        "payment_intent_data",
        "setup_intent_data",
        "subscription_data",
        "success_url",
        "ui_mode",
    )
    mode = p.enum("mode", ("payment", "setup", "subscription"), required=True) or "payment"
    ui_mode = p.enum("ui_mode", UI_MODES)
    if ui_mode not in (None, "hosted_page"):
        raise ParameterInvalid(
            "The emulator supports Checkout's hosted page only (ui_mode=hosted_page).", param="ui_mode"
        )
    subscription_data: dict[str, Any] | None = None
    sub = p.sub("subscription_data")
    if sub is not None:
        sub.only("trial_period_days", "metadata", "description")
        subscription_data = {
            "trial_period_days": sub.integer("trial_period_days", minimum=1, maximum=730),
            "metadata": merge_metadata({}, sub),
            "description": sub.string("description"),
        }
    payment_intent_data: dict[str, Any] | None = None
    pid = p.sub("payment_intent_data")
    if pid is not None:
        pid.only("metadata", "description", "setup_future_usage", "receipt_email")
        payment_intent_data = {
            "metadata": merge_metadata({}, pid),
            "description": pid.string("description", max_length=1000),
            "setup_future_usage": pid.enum("setup_future_usage", ("off_session", "on_session")),
            "receipt_email": pid.string("receipt_email"),
        }
    setup_intent_data: dict[str, Any] | None = None
    sid = p.sub("setup_intent_data")
    if sid is not None:
        sid.only("metadata", "description")
        setup_intent_data = {
            "metadata": merge_metadata({}, sid),
            "description": sid.string("description", max_length=1000),
        }
    session = req.backend(CheckoutBackend).checkout_session_create(
        mode=mode,
        line_items=_line_items(p),
        customer=p.string("customer"),
        customer_email=p.string("customer_email", max_length=512),
        customer_creation=p.enum("customer_creation", ("always", "if_required")),
        client_reference_id=p.string("client_reference_id", max_length=200),
        metadata=merge_metadata({}, p),
        success_url=p.string("success_url"),
        cancel_url=p.string("cancel_url"),
        expires_at=p.timestamp("expires_at"),
        subscription_data=subscription_data,
        payment_intent_data=payment_intent_data,
        locale=p.string("locale"),
        automatic_tax=bool(automatic_tax_param(p)),
        billing_address_collection=p.enum("billing_address_collection", ("auto", "required")),
        customer_update=_customer_update(p),
        discounts=discounts_param(p),
        allow_promotion_codes=p.boolean("allow_promotion_codes"),
        currency=p.currency(),
        setup_intent_data=setup_intent_data,
        allowed_payment_method_types=allowed_payment_method_types(p, exclusive_with=()),
    )
    return req.respond(session)


def _customer_update(p: Params) -> dict[str, str] | None:
    update = p.sub("customer_update")
    if update is None:
        return None
    update.only("address", "name", "shipping")
    if p.string("customer") is None:
        raise InvalidRequestError(
            "`customer_update` can only be used with `customer`.", param="customer_update"
        )
    values = {key: update.enum(key, ("auto", "never")) for key in ("address", "name", "shipping")}
    return {key: value for key, value in values.items() if value is not None}


def checkout_session_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(CheckoutBackend).checkout_session_require(req.path_params["id"]))


def checkout_session_update(req: Request) -> Response:
    p = req.params
    p.only("metadata")
    backend = req.backend(CheckoutBackend)
    session = backend.checkout_session_require(req.path_params["id"])
    if p.has("metadata"):
        session["metadata"] = merge_metadata(session["metadata"], p)
    return req.respond(session)


def checkout_session_list(req: Request) -> Response:
    p = req.params
    p.only(
        "customer",
        "customer_details",
        "payment_intent",
        "subscription",
        "status",
        "created",
        "limit",
        "starting_after",
        "ending_before",
    )
    details = p.sub("customer_details")
    email = None
    if details is not None:
        details.only("email")
        email = details.string("email", required=True)
    sessions = req.backend(CheckoutBackend).checkout_session_list(
        customer=p.string("customer"),
        payment_intent=p.string("payment_intent"),
        subscription=p.string("subscription"),
        status=p.enum("status", ("open", "complete", "expired")),
        customer_email=email,
        created=p.range_filter("created"),
    )
    return req.respond_list(sessions, url="/v1/checkout/sessions", object_type="checkout.session")


def checkout_session_line_items(req: Request) -> Response:
    p = req.params
    p.only("limit", "starting_after", "ending_before")
    session_id = req.path_params["id"]
    items = req.backend(CheckoutBackend).checkout_session_line_items(session_id)
    return req.respond_list(items, url=f"/v1/checkout/sessions/{session_id}/line_items", object_type="item")


def checkout_session_expire(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(CheckoutBackend).checkout_session_expire(req.path_params["id"]))


# -- fields rendered only when expanded ------------------------------------------------------------------

INCLUDED_LINE_ITEMS = 10  # like a list's default page; the rest through ``GET …/line_items``


def include_line_items(account: Account, session: StripeObject) -> dict[str, Any]:
    """``expand[]=line_items``: the first page of ``GET /v1/checkout/sessions/{id}/line_items``."""
    items = account.backend(CheckoutBackend).line_items_of(session["id"])
    return {
        "object": "list",
        "data": [clone(item) for item in items[:INCLUDED_LINE_ITEMS]],
        "has_more": len(items) > INCLUDED_LINE_ITEMS,
        "url": f"/v1/checkout/sessions/{session['id']}/line_items",
    }


def include_total_breakdown(account: Account, session: StripeObject) -> dict[str, Any]:
    """``expand[]=total_details.breakdown`` (given the session): no discounts are emulated; taxes per rate
    (automatic tax)."""
    items = account.backend(CheckoutBackend).line_items_of(session["id"])
    return {"discounts": [], "taxes": session_tax_breakdown(items)}


def include_item_taxes(account: Account, item: StripeObject) -> list[Any]:
    """``expand[]=line_items.data.taxes``: the item's automatic tax (empty without it)."""
    stored = account.store.get("item", item["id"])
    return clone((stored or {}).get("_taxes") or [])


def include_no_amounts(account: Account, item: StripeObject) -> list[Any]:
    """``expand[]=line_items.data.discounts`` / ``….taxes`` on a Checkout line item: always empty."""
    return []


# -- hosted page and completion controls (no API key) ----------------------------------------------------


def _locate(session_id: str) -> Callable[[Request], tuple[Account, StripeObject]]:
    def find(req: Request) -> tuple[Account, StripeObject]:
        found = req.emulator.locate(session_id)
        if found is None or found[1]["object"] != "checkout.session":
            raise ResourceMissing("checkout.session", session_id)
        return found

    return find


def _html(body: str, status: int = 200) -> Response:
    return Response(status, body.encode(), {"Content-Type": HTML})


def _redirect(url: str) -> Response:
    return Response(303, b"", {"Location": url, "Content-Type": HTML})


def checkout_page(req: Request) -> Response:
    """``GET /checkout/pay/{id}``."""
    session_id = req.path_params["id"]
    try:
        account, _ = _locate(session_id)(req)
    except StripeError:
        return _html("<!doctype html><title>Not found</title><h1>No such Checkout Session</h1>", 404)
    customer = (account.store.get("checkout.session", session_id) or {}).get("customer")
    # Stripe judges a test-clock customer's session by the clock: open until the clock passes its expires_at.
    with account.lock, test_clock_scope(customer_clock_scope(account, customer)):
        backend = account.backend(CheckoutBackend)
        session = backend.checkout_session_require(session_id)
        return _html(_page(account, backend, session))


def _page(account: Account, backend: CheckoutBackend, session: StripeObject, **form: Any) -> str:
    """The hosted page of a session as it stands (its pending PaymentIntent, the customer's email if Stripe has
    one), with what the form sent back after a refusal (`form`: error, card_number, email)."""
    return render_page(
        account,
        session,
        pending_payment_intent=backend.pending_payment_intent(session),
        customer_email=backend.customer_email_of(session),
        **form,
    )


def _finish(
    req: Request,
    account: Account,
    session_id: str,
    action: Callable[[CheckoutBackend], StripeObject],
    notices: list[str] | None = None,
    country: str | None = None,
) -> Response:
    """Run ``action`` under the account lock; answer JSON (API form) or HTML/redirect (``ui=html``). A
    ``notices`` entry the action adds is shown on the page it answers with, the form as typed (``country``:
    the billing country)."""
    html = req.params.string("ui") == "html"
    customer = (account.store.get("checkout.session", session_id) or {}).get("customer")
    # A test-clock customer pays at its clock's frozen time, as its API requests do.
    with account.lock, test_clock_scope(customer_clock_scope(account, customer)):
        backend = account.backend(CheckoutBackend)
        try:
            session = action(backend)
        except StripeError as exc:
            if not html:
                raise
            session = backend.checkout_session_require(session_id)
            page = _page(
                account,
                backend,
                session,
                error=exc.message,
                card_number=req.params.string("card") or "4242 4242 4242 4242",
                email=req.params.string("email"),
            )
            return _html(page, exc.status)
        if not html:
            return Response.json(render(account, session))
        target = success_redirect(session) if session["status"] == "complete" else None
        if target:
            return _redirect(target)
        form: dict[str, Any] = {}
        if notices:
            form = {
                "notice": notices[0],
                "card_number": req.params.string("card") or "4242 4242 4242 4242",
                "email": req.params.string("email"),
                "country": country,
            }
        return _html(_page(account, backend, session, **form))


def checkout_session_complete_control(req: Request) -> Response:
    """``POST /_emulator/checkout/sessions/{id}/complete`` ``card=<number>`` ``email=<address>``
    ``address[country, postal_code, state, city, line1, line2]`` (the billing address the page collects)
    ``quote`` (the amounts the page showed, see :func:`~stripe_emulator.checkout.page.quote_of`)."""
    p = req.params
    p.only("card", "email", "ui", "address", "promotion_code", "quote")
    html = p.enum("ui", ("html", "json")) == "html"
    quote = p.string("quote")
    card = p.string("card") or "4242424242424242"
    email = p.string("email", max_length=512)
    code = p.string("promotion_code")
    address = None
    given = p.sub("address")
    if given is not None:
        given.only(*ADDRESS_KEYS)
        address = {key: given.string(key) or None for key in ADDRESS_KEYS}
        if not address["country"]:
            address = None
    session_id = req.path_params["id"]
    account, _ = _locate(session_id)(req)

    notices: list[str] = []

    def complete(backend: CheckoutBackend) -> StripeObject:
        # The page's promotion-code field: the code applies first, then the customer pays the new total.
        if code:
            backend.checkout_session_apply_promotion_code(session_id, code)
        if html and quote is not None:
            # The page's form: a code or country that changes what the page stated shows the new amounts
            # instead of charging them (Stripe's page updates its totals before the customer pays).
            session = backend.checkout_session_tax_from(session_id, address)
            if session["status"] == "open" and quote_of(account, session) != quote:
                country = (address or {}).get("country")
                notices.append(
                    f"With your billing country ({country}) the amounts are now as shown: check them and confirm."
                    if country and not code
                    else "With your promotion code the amounts are now as shown: check them and confirm."
                )
                return session
        return backend.checkout_session_complete(session_id, card_number=card, email=email, address=address)

    return _finish(req, account, session_id, complete, notices, (address or {}).get("country"))


def checkout_session_authenticate_control(req: Request) -> Response:
    """``POST /_emulator/checkout/sessions/{id}/authenticate`` ``outcome=succeed|fail``: answer the 3-D
    Secure challenge of the session's pending payment."""
    p = req.params
    p.only("outcome", "ui")
    p.enum("ui", ("html", "json"))
    succeed = (p.enum("outcome", ("succeed", "fail")) or "succeed") == "succeed"
    session_id = req.path_params["id"]
    account, _ = _locate(session_id)(req)
    return _finish(
        req,
        account,
        session_id,
        lambda backend: backend.checkout_session_authenticate(session_id, succeed=succeed),
    )
