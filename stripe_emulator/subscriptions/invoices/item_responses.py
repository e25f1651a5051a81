"""Invoice items, wire side (``/v1/invoiceitems``). At this API version an item's price is
``pricing[price]`` (or ``price_data``); the top-level ``price`` of older versions is refused as an unknown
parameter, as Stripe does. Behaviour lives in :mod:`stripe_emulator.subscriptions.invoices.items`."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core.errors import InvalidRequestError, ParameterMissing
from stripe_emulator.core.params import Params, merge_metadata
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.products.models import ProductsBackend
from stripe_emulator.subscriptions.invoices import InvoicesBackend

MAX_AMOUNT = 99_999_999


def _period(p: Params) -> tuple[int, int] | None:
    period = p.sub("period")
    if period is None:
        return None
    period.only("start", "end")
    start = period.timestamp("start", required=True) or 0
    end = period.timestamp("end", required=True) or 0
    if end < start:
        raise InvalidRequestError(
            "The period end must be greater than or equal to the period start.", param="period[end]"
        )
    return start, end


def _price_id(req: Request, p: Params) -> str | None:
    """``pricing[price]``, or a one-time price made inline from ``price_data`` (inactive, as Stripe's are)."""
    pricing = p.sub("pricing")
    data = p.sub("price_data")
    if pricing is not None and data is not None:
        raise InvalidRequestError(
            "You may only specify one of these parameters: price_data, pricing.", param="price_data"
        )
    if pricing is not None:
        pricing.only("price")
        return pricing.string("price", required=True)
    if data is None:
        return None
    data.only("currency", "product", "unit_amount", "tax_behavior")
    price = req.backend(ProductsBackend).price_create(
        currency=data.currency(required=True) or "",
        product_id=data.string("product", required=True),
        unit_amount=data.integer("unit_amount", required=True, minimum=0),
        tax_behavior=data.enum("tax_behavior", ("exclusive", "inclusive", "unspecified")),
        active=False,
    )
    return str(price["id"])


def _amount(p: Params) -> int | None:
    return p.integer("amount", minimum=-MAX_AMOUNT, maximum=MAX_AMOUNT)


def invoiceitem_create(req: Request) -> Response:
    p = req.params
    p.only(
        "amount",
        "currency",
        "customer",
        "description",
        "discountable",
        "invoice",
        "metadata",
        "period",
        "price_data",
        "pricing",
        "quantity",
        "subscription",
    )
    customer = p.string("customer")
    if customer is None:
        raise ParameterMissing("customer")
    amount = _amount(p)
    quantity = p.integer("quantity", minimum=0)
    has_price = p.has("pricing") or p.has("price_data")
    if amount is not None and has_price:
        raise InvalidRequestError(
            "You may only specify one of these parameters: amount, pricing.", param="amount"
        )
    if amount is None and not has_price:
        raise InvalidRequestError(
            "You must specify either `amount` or `pricing[price]` (or `price_data`).",
            code="parameter_missing",
            param="amount",
        )
    if quantity is not None and amount is not None:
        raise InvalidRequestError(
            "`quantity` can only be used with `pricing[price]` or `price_data`: an `amount` is the total.",
            param="quantity",
        )
    period = _period(p)
    price_id = _price_id(req, p)
    item = req.backend(InvoicesBackend).invoiceitem_add(
        customer_id=customer,
        price_id=price_id,
        amount=amount,
        quantity=quantity,
        currency=p.currency(),
        description=p.string("description"),
        invoice_id=p.string("invoice"),
        subscription_id=p.string("subscription"),
        period=period,
        discountable=p.boolean("discountable"),
        metadata=merge_metadata({}, p),
    )
    return req.respond(item)


def invoiceitem_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(InvoicesBackend).invoiceitem_require(req.path_params["id"]))


def invoiceitem_update(req: Request) -> Response:
    p = req.params
    p.only("amount", "description", "discountable", "metadata", "period", "pricing", "quantity")
    backend = req.backend(InvoicesBackend)
    item = backend.invoiceitem_require(req.path_params["id"])
    changes: dict[str, Any] = {}
    if p.has("amount"):
        if p.has("pricing"):
            raise InvalidRequestError(
                "You may only specify one of these parameters: amount, pricing.", param="amount"
            )
        changes["amount"] = _amount(p)
    pricing = p.sub("pricing")
    if pricing is not None:
        pricing.only("price")
        changes["price"] = pricing.string("price", required=True)
    if p.has("quantity"):
        if "amount" in changes or (item["pricing"]["price_details"] is None and "price" not in changes):
            raise InvalidRequestError(
                "`quantity` can only be used with a price: an `amount` is the total.", param="quantity"
            )
        changes["quantity"] = p.integer("quantity", required=True, minimum=0)
    for key in ("description", "discountable", "period", "metadata"):
        if not p.has(key):
            continue
        if key == "description":
            changes[key] = p.string(key)
        elif key == "discountable":
            changes[key] = p.boolean(key, required=True)
        elif key == "period":
            changes[key] = _period(p)
        else:
            changes[key] = merge_metadata(item["metadata"], p)
    return req.respond(backend.invoiceitem_update(item["id"], changes))


def invoiceitem_delete(req: Request) -> Response:
    req.params.only()
    return Response.json(req.backend(InvoicesBackend).invoiceitem_delete(req.path_params["id"]))


def invoiceitem_list(req: Request) -> Response:
    p = req.params
    p.only("customer", "invoice", "pending", "created", "limit", "starting_after", "ending_before")
    items = req.backend(InvoicesBackend).invoiceitem_list(
        customer=p.string("customer"),
        invoice=p.string("invoice"),
        pending=p.boolean("pending"),
        created=p.range_filter("created"),
    )
    return req.respond_list(items, url="/v1/invoiceitems", object_type="invoiceitem")
