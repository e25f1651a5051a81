"""Products and prices, wire side."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core.account import Account
from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.params import Params, merge_metadata
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.products.models import ProductsBackend

TAX_BEHAVIORS = ("exclusive", "inclusive", "unspecified")
INTERVALS = ("day", "week", "month", "year")

PRODUCT_FIELDS = (
    "active",
    "description",
    "images",
    "marketing_features",
    "metadata",
    "name",
    "package_dimensions",
    "shippable",
    "statement_descriptor",
    "tax_code",
    "unit_label",
    "url",
)


def _product_fields(p: Params) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in ("description", "statement_descriptor", "tax_code", "unit_label", "url"):
        if p.has(key):
            values[key] = p.string(key, max_length=22 if key == "statement_descriptor" else 5000)
    if p.has("name"):
        values["name"] = p.string("name", required=True)
    for key in ("active", "shippable"):
        if p.has(key):
            values[key] = p.boolean(key)
    if p.has("images"):
        values["images"] = p.strings("images", max_items=8) or []
    if p.has("marketing_features"):
        features = p.hashes("marketing_features") or []
        for feature in features:
            feature.only("name")
        values["marketing_features"] = [{"name": f.string("name", required=True)} for f in features]
    if p.has("package_dimensions"):
        dims = p.sub("package_dimensions")
        if dims is None:
            values["package_dimensions"] = None
        else:
            dims.only("height", "length", "weight", "width")
            values["package_dimensions"] = {
                k: float(dims.string(k, required=True) or 0) for k in ("height", "length", "weight", "width")
            }
    return values


def product_create(req: Request) -> Response:
    p = req.params
    p.only("id", *PRODUCT_FIELDS)
    values = _product_fields(p)
    values["name"] = p.string("name", required=True)
    values["metadata"] = merge_metadata({}, p)
    if values.get("active") is None:
        values.pop("active", None)
    product = req.backend(ProductsBackend).product_create(product_id=p.string("id"), **values)
    return req.respond(product)


def product_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(ProductsBackend).product_require(req.path_params["id"]))


def product_update(req: Request) -> Response:
    p = req.params
    p.only("default_price", *PRODUCT_FIELDS)
    backend = req.backend(ProductsBackend)
    product = backend.product_require(req.path_params["id"])
    changes = _product_fields(p)
    if p.has("default_price"):
        changes["default_price"] = p.string("default_price")
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(product["metadata"], p)
    return req.respond(backend.product_update(product["id"], changes))


def product_delete(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(ProductsBackend).product_delete(req.path_params["id"]))


def product_list(req: Request) -> Response:
    p = req.params
    p.only("active", "ids", "shippable", "url", "created", "limit", "starting_after", "ending_before")
    products = req.backend(ProductsBackend).product_list(
        active=p.boolean("active"),
        ids_=p.strings("ids"),
        shippable=p.boolean("shippable"),
        url=p.string("url"),
        created=p.range_filter("created"),
    )
    return req.respond_list(products, url="/v1/products", object_type="product")


def product_feature_list(req: Request) -> Response:
    """``GET /v1/products/{product}/features``."""
    p = req.params
    p.only("limit", "starting_after", "ending_before")
    product_id = req.path_params["product"]
    features = req.backend(ProductsBackend).product_features(product_id)
    return req.respond_list(
        features, url=f"/v1/products/{product_id}/features", object_type="product_feature"
    )


# -- prices --------------------------------------------------------------------------------------------------


def _recurring(p: Params) -> dict[str, Any] | None:
    recurring = p.sub("recurring")
    if recurring is None:
        return None
    recurring.only("interval", "interval_count", "usage_type", "meter", "trial_period_days")
    return {
        "interval": recurring.enum("interval", INTERVALS, required=True),
        "interval_count": recurring.integer("interval_count", minimum=1),
        "usage_type": recurring.enum("usage_type", ("licensed", "metered")),
        "meter": recurring.string("meter"),
        "trial_period_days": recurring.integer("trial_period_days", minimum=1, maximum=730),
    }


def _product_data(p: Params) -> dict[str, Any] | None:
    data = p.sub("product_data")
    if data is None:
        return None
    data.only("name", "active", "id", "metadata", "statement_descriptor", "tax_code", "unit_label")
    values: dict[str, Any] = {
        "name": data.string("name", required=True),
        "product_id": data.string("id"),
        "metadata": merge_metadata({}, data),
        "statement_descriptor": data.string("statement_descriptor", max_length=22),
        "tax_code": data.string("tax_code"),
        "unit_label": data.string("unit_label"),
    }
    active = data.boolean("active")
    if active is not None:
        values["active"] = active
    return values


def _transform_quantity(p: Params) -> dict[str, Any] | None:
    transform = p.sub("transform_quantity")
    if transform is None:
        return None
    transform.only("divide_by", "round")
    return {
        "divide_by": transform.integer("divide_by", required=True, minimum=1),
        "round": transform.enum("round", ("down", "up"), required=True),
    }


def _tiers(p: Params) -> list[dict[str, Any]] | None:
    tiers = p.hashes("tiers")
    if tiers is None:
        return None
    parsed = []
    for tier in tiers:
        tier.only("flat_amount", "flat_amount_decimal", "unit_amount", "unit_amount_decimal", "up_to")
        up_to: int | str | None = "inf" if tier.raw("up_to") == "inf" else tier.integer("up_to", minimum=1)
        parsed.append(
            {
                "up_to": up_to,
                "unit_amount": tier.integer("unit_amount", minimum=0),
                "unit_amount_decimal": tier.string("unit_amount_decimal"),
                "flat_amount": tier.integer("flat_amount", minimum=0),
                "flat_amount_decimal": tier.string("flat_amount_decimal"),
            }
        )
    return parsed


def include_tiers(account: Account, price: StripeObject) -> list[dict[str, Any]] | None:
    """``expand[]=tiers``: Stripe renders a price's tiers only when asked (null for a per-unit price)."""
    stored = account.store.find(price["id"])
    tiers = stored.get("_tiers") if stored is not None else None
    return clone(tiers) if tiers is not None else None


def price_create(req: Request) -> Response:
    p = req.params
    p.only(
        "active",
        "billing_scheme",
        "currency",
        "lookup_key",
        "metadata",
        "nickname",
        "product",
        "product_data",
        "recurring",
        "tax_behavior",
        "tiers",
        "tiers_mode",
        "transfer_lookup_key",
        "transform_quantity",
        "unit_amount",
        "unit_amount_decimal",
    )
    if p.has("product") and p.has("product_data"):
        raise InvalidRequestError(
            "You may only specify one of these parameters: product, product_data.", param="product_data"
        )
    active = p.boolean("active")
    price = req.backend(ProductsBackend).price_create(
        currency=p.currency(required=True) or "",
        product_id=p.string("product"),
        product_data=_product_data(p),
        unit_amount=p.integer("unit_amount"),
        unit_amount_decimal=p.string("unit_amount_decimal"),
        recurring=_recurring(p),
        lookup_key=p.string("lookup_key", max_length=200),
        transfer_lookup_key=bool(p.boolean("transfer_lookup_key")),
        tax_behavior=p.enum("tax_behavior", TAX_BEHAVIORS),
        nickname=p.string("nickname"),
        metadata=merge_metadata({}, p),
        active=True if active is None else active,
        transform_quantity=_transform_quantity(p),
        billing_scheme=p.enum("billing_scheme", ("per_unit", "tiered")) or "per_unit",
        tiers_mode=p.enum("tiers_mode", ("graduated", "volume")),
        tiers=_tiers(p),
    )
    return req.respond(price)


def price_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(ProductsBackend).price_require(req.path_params["id"]))


def price_update(req: Request) -> Response:
    p = req.params
    # Amount, currency, product and recurrence are immutable: sending them is an unknown parameter, as in Stripe.
    p.only("active", "lookup_key", "metadata", "nickname", "tax_behavior", "transfer_lookup_key")
    backend = req.backend(ProductsBackend)
    price = backend.price_require(req.path_params["id"])
    changes: dict[str, Any] = {}
    if p.has("active"):
        changes["active"] = bool(p.boolean("active", required=True))
    if p.has("lookup_key"):
        changes["lookup_key"] = p.string("lookup_key", max_length=200)
    if p.has("nickname"):
        changes["nickname"] = p.string("nickname")
    if p.has("tax_behavior"):
        changes["tax_behavior"] = p.enum("tax_behavior", TAX_BEHAVIORS, required=True)
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(price["metadata"], p)
    updated = backend.price_update(
        price["id"], changes, transfer_lookup_key=bool(p.boolean("transfer_lookup_key"))
    )
    return req.respond(updated)


def price_list(req: Request) -> Response:
    p = req.params
    p.only(
        "active",
        "currency",
        "product",
        "type",
        "lookup_keys",
        "recurring",
        "created",
        "limit",
        "starting_after",
        "ending_before",
    )
    recurring_filter: dict[str, str] | None = None
    recurring = p.sub("recurring")
    if recurring is not None:
        recurring.only("interval", "usage_type", "meter")
        recurring_filter = {}
        for key, value in (
            ("interval", recurring.enum("interval", INTERVALS)),
            ("usage_type", recurring.enum("usage_type", ("licensed", "metered"))),
            ("meter", recurring.string("meter")),
        ):
            if value is not None:
                recurring_filter[key] = value
    prices = req.backend(ProductsBackend).price_list(
        active=p.boolean("active"),
        currency=p.currency(),
        product=p.string("product"),
        type_=p.enum("type", ("one_time", "recurring")),
        lookup_keys=p.strings("lookup_keys", max_items=10),
        recurring=recurring_filter,
        created=p.range_filter("created"),
    )
    return req.respond_list(prices, url="/v1/prices", object_type="price")
