"""What an adoption is told: where a Stripe customer's external id is read (`customer_key`), and which Stripe
products become which catalog products with which feature values (`mapping`, the shape of `sync_catalog`'s file:
`features` declared as there, `products` naming their Stripe product, and `meters` naming the metered feature each
Stripe billing meter counts, for the metered prices that bill it). Validated before anything is read."""

import re
from dataclasses import dataclass, field
from typing import Any

from catalog.models import Feature
from core.errors import InvalidRequest

_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,100}$")
CUSTOMER_FIELDS = ("id", "email")


@dataclass(frozen=True)
class FeatureDeclared:
    key: str
    name: str
    type: str
    unit: str = ""


@dataclass(frozen=True)
class ProductMapped:
    stripe_product: str
    key: str
    features: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Mapping:
    features: tuple[FeatureDeclared, ...] = ()
    products: tuple[ProductMapped, ...] = ()
    meters: dict[str, str] = field(default_factory=dict)  # Stripe billing meter id → metered feature key

    def product_for(self, stripe_product_id: str) -> ProductMapped | None:
        return next((p for p in self.products if p.stripe_product == stripe_product_id), None)


@dataclass(frozen=True)
class CustomerKey:
    """Where a Stripe customer's external id is: a metadata key, or one of the customer's own fields."""

    metadata: str = ""
    field: str = ""

    def read(self, stripe_customer: dict[str, Any]) -> str:
        if self.metadata:
            value = (stripe_customer.get("metadata") or {}).get(self.metadata)
        else:
            value = stripe_customer.get(self.field)
        return str(value).strip()[:255] if value not in (None, "") else ""

    def describe(self) -> str:
        return f"metadata[{self.metadata}]" if self.metadata else self.field

    def as_json(self) -> dict[str, str]:
        return {"metadata": self.metadata} if self.metadata else {"field": self.field}


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", code="invalid_mapping", param=param)


def customer_key_parse(value: Any) -> CustomerKey:
    """`{"metadata": "<key>"}` or `{"field": "email" | "id"}`: exactly one."""
    if not isinstance(value, dict) or len(value) != 1:
        raise _invalid('expected {"metadata": "<key>"} or {"field": "email" | "id"}.', "customer_key")
    ((kind, name),) = value.items()
    if kind == "metadata" and isinstance(name, str) and 0 < len(name) <= 40:
        return CustomerKey(metadata=name)
    if kind == "field" and name in CUSTOMER_FIELDS:
        return CustomerKey(field=name)
    raise _invalid('expected {"metadata": "<key>"} or {"field": "email" | "id"}.', "customer_key")


def mapping_parse(document: Any) -> Mapping:
    """The mapping as a `Mapping`; InvalidRequest names the first invalid entry (`products[1].key`)."""
    if not isinstance(document, dict):
        raise _invalid("expected a mapping with `products` (and optionally `features`).", "mapping")
    unknown = sorted(set(document) - {"features", "products", "meters"})
    if unknown:
        raise _invalid("unknown key (expected features, products, meters).", f"mapping.{unknown[0]}")
    features = []
    for index, entry in enumerate(_list(document, "features")):
        path = f"mapping.features[{index}]"
        if not isinstance(entry, dict) or set(entry) - {"key", "name", "type", "unit"}:
            raise _invalid("expected {key, name, type, unit}.", path)
        if not _SLUG.match(str(entry.get("key") or "")):
            raise _invalid("a slug (letters, digits, - and _).", f"{path}.key")
        if entry.get("type") not in Feature.Type.values:
            raise _invalid(f"one of {', '.join(Feature.Type.values)}.", f"{path}.type")
        features.append(
            FeatureDeclared(
                key=entry["key"],
                name=str(entry.get("name") or entry["key"])[:200],
                type=entry["type"],
                unit=str(entry.get("unit") or "")[:50],
            )
        )
    products = []
    for index, entry in enumerate(_list(document, "products")):
        path = f"mapping.products[{index}]"
        if not isinstance(entry, dict) or set(entry) - {"stripe_product", "key", "features"}:
            raise _invalid("expected {stripe_product, key, features}.", path)
        stripe_product = entry.get("stripe_product")
        if not isinstance(stripe_product, str) or not stripe_product:
            raise _invalid("the Stripe product's id.", f"{path}.stripe_product")
        if not _SLUG.match(str(entry.get("key") or "")):
            raise _invalid("a slug (letters, digits, - and _).", f"{path}.key")
        values = entry.get("features") or {}
        if not isinstance(values, dict):
            raise _invalid("a map of feature keys to values.", f"{path}.features")
        products.append(ProductMapped(stripe_product=stripe_product, key=entry["key"], features=dict(values)))
    meters = document.get("meters") or {}
    if not isinstance(meters, dict):
        raise _invalid("a map of Stripe billing meter ids to metered feature keys.", "mapping.meters")
    for meter, feature_key in meters.items():
        if not isinstance(meter, str) or not meter:
            raise _invalid("a Stripe billing meter's id.", "mapping.meters")
        if not _SLUG.match(str(feature_key or "")):
            raise _invalid("the key of the metered feature the meter counts.", f"mapping.meters.{meter}")
    for label, keys in (
        ("features", [f.key for f in features]),
        ("products", [p.key for p in products]),
        ("products", [p.stripe_product for p in products]),
        ("meters", [str(feature_key) for feature_key in meters.values()]),
    ):
        if len(set(keys)) != len(keys):
            duplicate = next(k for k in keys if keys.count(k) > 1)
            raise _invalid(f"{duplicate!r} is declared twice.", f"mapping.{label}")
    return Mapping(
        features=tuple(features),
        products=tuple(products),
        meters={str(meter): str(feature_key) for meter, feature_key in meters.items()},
    )


def _list(document: dict[str, Any], name: str) -> list[Any]:
    value = document.get(name) or []
    if not isinstance(value, list):
        raise _invalid("expected a list.", f"mapping.{name}")
    return value
