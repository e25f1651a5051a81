"""What the audit log records of a feature, a product and a price, before and after each catalog write; also the
shape a request or a declared file is compared with, to tell a retry from a change."""

from typing import Any

from catalog.models import Feature, Price, Product
from catalog.selectors import product_access_days, product_features


def feature_snapshot(feature: Feature) -> dict[str, Any]:
    snapshot = {"key": feature.key, "name": feature.name, "type": feature.type, "unit": feature.unit}
    if feature.usage_formula is not None:
        snapshot["usage_formula"] = feature.usage_formula
    return snapshot


def product_snapshot(product: Product) -> dict[str, Any]:
    return {
        "key": product.key,
        "name": product.name,
        "description": product.description,
        "active": product.active,
        "public": product.public,
        "features": product_features(product),
        "access_days": product_access_days(product),
        "account_cap": product.account_cap,
    }


def price_snapshot(price: Price) -> dict[str, Any]:
    return {
        "key": price.key,
        "product": price.product_id,
        "currency": price.currency,
        "unit_amount": price.unit_amount,
        "billing_scheme": price.billing_scheme,
        "tiers_mode": price.tiers_mode,
        "tiers": price.tiers,
        "type": price.type,
        "interval": price.interval,
        "interval_count": price.interval_count,
        "trial_days": price.trial_days,
        "usage_type": price.usage_type,
        "meter": price.meter.key if price.meter else None,
        "tax_behavior": price.tax_behavior,
        "active": price.active,
        "stripe_price_id": price.stripe_price_id,
    }
