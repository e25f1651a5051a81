"""Product versions, read: which version a subscription item is on, what an earlier version gives, and how two
versions differ. A product's `ProductFeature` rows are always its latest version, so a subscriber on it reads them
as before; a subscriber kept on an earlier version reads that version's frozen `values` instead.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from catalog.models import Feature, Price, Product, ProductFeature, ProductVersion
from catalog.rules import FeatureValue
from catalog.selectors import product_features

SECOND = timedelta(seconds=1)
# A version's values of one feature, as `ProductVersion.values` stores them (by feature id).
VALUE_FIELDS = (
    "value",
    "per_unit",
    "overage",
    "windows",
    "cap",
    "credits",
    "per_entity",
    "rollover",
    "cadence",
)


def price_frozen(price: Price) -> dict[str, Any]:
    """A price as a version freezes it: its terms and the Stripe price it is sold at (None until Stripe made it)."""
    return {
        "id": price.pk,
        "key": price.key,
        "currency": price.currency,
        "unit_amount": price.unit_amount,
        "billing_scheme": price.billing_scheme,
        "tiers_mode": price.tiers_mode or None,
        "tiers": price.tiers or None,
        "type": price.type,
        "interval": price.interval or None,
        "interval_count": price.interval_count,
        "usage_type": price.usage_type or None,
        "stripe_price_id": price.stripe_price_id or None,
    }


def version_contents(product: Product) -> dict[str, Any]:
    """What the product gives and sells now (its `ProductFeature` rows, account cap and active prices), as a
    version freezes it: `features` (the API's shape), `values` (the resolver's, by feature id), `account_cap` and
    `prices`."""
    rows = list(
        ProductFeature.objects.filter(product=product).select_related("feature").order_by("feature_id")
    )
    prices = Price.objects.filter(product=product, active=True).order_by("created_at", "pk")
    return {
        "features": {
            row.feature.key: FeatureValue.of(row).api() for row in sorted(rows, key=lambda r: r.feature.key)
        },
        "values": {row.feature_id: [getattr(row, name) for name in VALUE_FIELDS] for row in rows},
        "account_cap": product.account_cap,
        "prices": [price_frozen(price) for price in prices],
    }


def versions_at(pairs: Iterable[tuple[str, datetime | None]]) -> dict[tuple[str, datetime | None], int]:
    """The version of each (product id, moment) pair: the latest published before the moment's second ended
    (Stripe's times are whole seconds: an item Stripe created in the second a version was published is on it);
    a moment before the first version: version 1; none: the latest. One query for all of them."""
    wanted = list(dict.fromkeys(pairs))
    product_ids = sorted({product_id for product_id, _ in wanted})
    published: dict[str, list[tuple[datetime, int]]] = {pid: [] for pid in product_ids}
    if product_ids:
        for product_id, number, at in ProductVersion.objects.filter(product_id__in=product_ids).values_list(
            "product_id", "number", "published_at"
        ):
            published[product_id].append((at, number))
    found: dict[tuple[str, datetime | None], int] = {}
    for product_id, moment in wanted:
        versions = sorted(published[product_id], key=lambda pair: pair[1])
        if moment is None:
            found[(product_id, moment)] = versions[-1][1] if versions else 1
            continue
        in_force = [number for at, number in versions if at < moment + SECOND]
        found[(product_id, moment)] = in_force[-1] if in_force else 1
    return found


def version_values(keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], dict[str, tuple[Any, ...]]]:
    """The frozen values of each (product id, version number): feature id → (value, per_unit, overage, windows,
    cap, credits, per_entity), as the resolver reads a product's rows. A version never written (a product older
    than versions, never changed since) is missing: its rows are the version."""
    wanted = set(keys)
    found: dict[tuple[str, int], dict[str, tuple[Any, ...]]] = {}
    if not wanted:
        return found
    rows = ProductVersion.objects.filter(
        product_id__in={product_id for product_id, _ in wanted},
        number__in={number for _, number in wanted},
    ).values_list("product_id", "number", "values")
    for product_id, number, values in rows:
        if (product_id, number) in wanted:
            found[(product_id, number)] = {feature_id: tuple(row[:7]) for feature_id, row in values.items()}
    return found


@dataclass(frozen=True)
class CreditValue:
    """What a product version gives a credits feature, as a paid period's grant reads it."""

    feature_id: str
    feature: Feature
    value: Any
    per_unit: bool
    per_entity: dict[str, Any] | None
    rollover: int | None
    cadence: str


def credit_values(product_id: str, number: int | None) -> list[CreditValue]:
    """The credits features version `number` of the product gives: its rows when it is the latest (or None),
    else what that version froze."""
    latest = (
        Product.objects.filter(pk=product_id).values_list("version", flat=True).first()
        if number is not None
        else None
    )
    if number is None or latest is None or number >= latest:
        return [
            CreditValue(
                row.feature_id,
                row.feature,
                row.value,
                row.per_unit,
                row.per_entity,
                row.rollover,
                row.cadence,
            )
            for row in ProductFeature.objects.filter(
                product_id=product_id, feature__type=Feature.Type.CREDITS
            ).select_related("feature")
        ]
    frozen = (
        ProductVersion.objects.filter(product_id=product_id, number=number)
        .values_list("values", flat=True)
        .first()
    ) or {}
    features = Feature.objects.in_bulk(list(frozen))
    return [
        CreditValue(
            feature_id,
            features[feature_id],
            value=given[0],
            per_unit=given[1],
            per_entity=given[6],
            rollover=given[7],
            cadence=given[8] or "",
        )
        for feature_id, given in sorted(frozen.items())
        if feature_id in features and features[feature_id].type == Feature.Type.CREDITS
    ]


def version_changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """What a version changed of the one before it, per feature (sorted by key): {feature, change: "added" |
    "removed" | "changed", before, after}, None on the side that does not give the feature (a value may itself
    be null, unlimited: `change` tells them apart). The first version changes nothing."""
    if before is None:
        return []
    changes = []
    for key in sorted(set(before) | set(after)):
        if key in before and key in after and before[key] == after[key]:
            continue
        change = "added" if key not in before else "removed" if key not in after else "changed"
        changes.append({"feature": key, "change": change, "before": before.get(key), "after": after.get(key)})
    return changes


def product_versions(product: Product) -> list[dict[str, Any]]:
    """The product's published versions, oldest first, each with what it changed of the one before."""
    rows = list(ProductVersion.objects.filter(product=product).order_by("number"))
    answered = []
    previous: dict[str, Any] | None = None
    for row in rows:
        answered.append(
            {
                "number": row.number,
                "published_at": row.published_at,
                "note": row.note or None,
                "latest": row.number == product.version,
                "features": row.features,
                "account_cap": row.account_cap,
                "prices": row.prices,
                "changes": version_changes(previous, row.features),
            }
        )
        previous = row.features
    return answered


def draft_changes(product: Product, features: dict[str, Any]) -> list[dict[str, Any]]:
    """What a draft's `features` change of the product's latest version."""
    return version_changes(product_features(product), features)


def draft_price_changes(product: Product, prices: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """What a draft's `prices` change of the product's prices now, by price key (sorted): {price, before,
    after}, each side `{"unit_amount": n}` or `{"tiers": [...]}`; terms a price already has are no change."""
    current = {price.key: price for price in Price.objects.filter(product=product, key__in=list(prices))}
    changes = []
    for key in sorted(prices):
        price = current.get(key)
        if price is None:
            continue
        after = prices[key]
        before = {"tiers": price.tiers} if "tiers" in after else {"unit_amount": price.unit_amount}
        if before != after:
            changes.append({"price": key, "before": before, "after": after})
    return changes
