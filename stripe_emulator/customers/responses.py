"""Customers, wire side: params in, rendered customers out. Behaviour lives in ``models.py``.

``parse_address`` / ``parse_shipping`` are shared with later services (Checkout collects addresses too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stripe_emulator.core.errors import InvalidRequestError, ResourceMissing
from stripe_emulator.core.params import Params, merge_metadata
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.core.search import render_search_result, search
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.customers.models import CustomersBackend

if TYPE_CHECKING:
    from stripe_emulator.core.account import Account

ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")
TAX_EXEMPT = ("none", "exempt", "reverse")
# Stripe's query fields for customers (https://docs.stripe.com/search#query-fields-for-customers).
SEARCH_FIELDS = {"created": "numeric", "email": "string", "name": "string", "phone": "string"}
FIELDS = (
    "address",
    "balance",
    "description",
    "email",
    "invoice_prefix",
    "invoice_settings",
    "metadata",
    "name",
    "next_invoice_sequence",
    "phone",
    "preferred_locales",
    "shipping",
    "tax_exempt",
)


def parse_address(params: Params, key: str = "address") -> dict[str, Any] | None:
    address = params.sub(key)
    if address is None:
        return None
    address.only(*ADDRESS_FIELDS)
    return {field: address.string(field) for field in ADDRESS_FIELDS}


def parse_shipping(params: Params, key: str = "shipping") -> dict[str, Any] | None:
    shipping = params.sub(key)
    if shipping is None:
        return None
    shipping.only("address", "name", "phone")
    return {
        "address": parse_address(shipping, "address") or dict.fromkeys(ADDRESS_FIELDS),
        "name": shipping.string("name", required=True),
        "phone": shipping.string("phone"),
    }


def parse_invoice_settings(params: Params) -> dict[str, Any] | None:
    settings = params.sub("invoice_settings")
    if settings is None:
        return None
    settings.only("custom_fields", "default_payment_method", "footer", "rendering_options")
    parsed: dict[str, Any] = {}
    if settings.has("custom_fields"):
        fields = settings.hashes("custom_fields") or []
        for field in fields:
            field.only("name", "value")
        parsed["custom_fields"] = [
            {"name": f.string("name", required=True), "value": f.string("value", required=True)}
            for f in fields
        ] or None
    if settings.has("default_payment_method"):
        # Checked against the stored payment methods by ``_check_default_payment_method``.
        parsed["default_payment_method"] = settings.string("default_payment_method")
    if settings.has("footer"):
        parsed["footer"] = settings.string("footer")
    if settings.has("rendering_options"):
        options = settings.sub("rendering_options")
        if options is None:
            parsed["rendering_options"] = None
        else:
            options.only("amount_tax_display", "template")
            parsed["rendering_options"] = {
                "amount_tax_display": options.enum(
                    "amount_tax_display", ("exclude_tax", "include_inclusive_tax")
                ),
                "template": options.string("template"),
            }
    return parsed


def _fields(p: Params) -> dict[str, Any]:
    """The customer fields present in the request, validated (absent ones are left out)."""
    values: dict[str, Any] = {}
    for key in ("description", "email", "name", "phone"):
        if p.has(key):
            values[key] = p.string(key, max_length=512 if key == "email" else 5000)
    if p.has("address"):
        values["address"] = parse_address(p)
    if p.has("shipping"):
        values["shipping"] = parse_shipping(p)
    if p.has("balance"):
        values["balance"] = p.integer("balance") or 0
    if p.has("preferred_locales"):
        values["preferred_locales"] = p.strings("preferred_locales") or []
    if p.has("tax_exempt"):
        values["tax_exempt"] = p.enum("tax_exempt", TAX_EXEMPT) or "none"
    if p.has("invoice_settings"):
        values["invoice_settings"] = parse_invoice_settings(p) or {}
    if p.has("invoice_prefix"):
        values["invoice_prefix"] = p.string("invoice_prefix", max_length=12)
    if p.has("next_invoice_sequence"):
        values["next_invoice_sequence"] = p.integer("next_invoice_sequence", minimum=1)
    return values


def _check_default_payment_method(req: Request, customer_id: str | None, values: dict[str, Any]) -> None:
    """Stripe accepts only a payment method attached to this customer as its default."""
    pm_id = (values.get("invoice_settings") or {}).get("default_payment_method")
    if pm_id is None:
        return
    param = "invoice_settings[default_payment_method]"
    pm = req.account.store.get("payment_method", pm_id)
    if pm is None:
        raise ResourceMissing("PaymentMethod", pm_id, param=param)
    if customer_id is None or pm.get("customer") != customer_id:
        raise InvalidRequestError(
            f"The customer does not have a payment method with the ID {pm_id}. The payment method must be "
            "attached to the customer.",
            param=param,
        )


def customer_create(req: Request) -> Response:
    p = req.params
    p.only(*FIELDS, "test_clock")
    values = _fields(p)
    _check_default_payment_method(req, None, values)
    values["metadata"] = merge_metadata({}, p)
    values["test_clock"] = p.string("test_clock")
    customer = req.backend(CustomersBackend).customer_create(**values)
    return req.respond(customer)


def customer_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(CustomersBackend).customer_get(req.path_params["id"]))


def customer_update(req: Request) -> Response:
    p = req.params
    p.only(*FIELDS)
    backend = req.backend(CustomersBackend)
    customer = backend.customer_require(req.path_params["id"])
    changes = _fields(p)
    _check_default_payment_method(req, customer["id"], changes)
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(customer["metadata"], p)
    return req.respond(backend.customer_update(customer["id"], changes))


def customer_delete(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(CustomersBackend).customer_delete(req.path_params["id"]))


def customer_list(req: Request) -> Response:
    p = req.params
    p.only("email", "created", "limit", "starting_after", "ending_before", "test_clock")
    customers = req.backend(CustomersBackend).customer_list(
        email=p.string("email"), created=p.range_filter("created"), test_clock=p.string("test_clock")
    )
    return req.respond_list(customers, url="/v1/customers", object_type="customer")


def customer_search(req: Request) -> Response:
    """``GET /v1/customers/search``: Stripe's query language over ``email``, ``name``, ``phone`` (strings),
    ``created`` (numeric) and ``metadata["key"]`` (see :mod:`stripe_emulator.core.search`)."""
    p = req.params
    p.only("query", "limit", "page")
    query = p.string("query", required=True) or ""
    found = search(
        req.backend(CustomersBackend).customer_list(), query, fields=SEARCH_FIELDS, resource="customers"
    )
    return Response.json(
        render_search_result(req.account, found, p, url="/v1/customers/search", object_type="customer")
    )


def customer_source_list(req: Request) -> Response:
    """``GET /v1/customers/{customer}/sources``."""
    p = req.params
    p.only("object", "limit", "starting_after", "ending_before")
    customer_id = req.path_params["customer"]
    sources = req.backend(CustomersBackend).customer_sources(customer_id, object_type=p.string("object"))
    return req.respond_list(sources, url=f"/v1/customers/{customer_id}/sources", object_type="source")


def include_customer_sources(account: Account, customer: StripeObject) -> dict[str, Any]:
    """``expand[]=sources``: not rendered by default since API version 2020-08-27. An embedded list, so it
    carries ``total_count`` like Stripe's (``subscription.items`` …)."""
    if customer.get("deleted"):  # a tombstone has no lists
        raise InvalidRequestError("This property cannot be expanded (sources).", param="expand")
    sources = account.backend(CustomersBackend).customer_sources(customer["id"])
    return {
        "object": "list",
        "data": [clone(s) for s in sources],
        "has_more": False,
        "total_count": len(sources),
        "url": f"/v1/customers/{customer['id']}/sources",
    }
