"""Reads of the catalog: features (every selector takes the project), what a product gives, and the re-reads the
services make of a product or price they already hold (with the relations their snapshots and Stripe sync use).

Products and prices of a project are `billing.selectors.product_list` / `price_list`."""

from typing import Any

from django.db.models import Q, QuerySet

from billing.models import Price, Product
from core.errors import NotFound
from entitlements.models import Feature, ProductAccess
from projects.models import Project


def feature_list(*, project: Project) -> QuerySet[Feature]:
    return Feature.objects.filter(project=project)


def feature_get(*, project: Project, key_or_id: str, param: str | None = None) -> Feature:
    feature = feature_list(project=project).filter(Q(key=key_or_id) | Q(pk=key_or_id)).first()
    if feature is None:
        raise NotFound(f"No such feature: {key_or_id!r}.", param=param)
    return feature


def product_features(product: Product) -> dict[str, Any]:
    """A product's feature values in the API's shape: `{"<feature key>": value | {"per_unit": n}}`."""
    return {
        row.feature.key: {"per_unit": row.value} if row.per_unit else row.value
        for row in sorted(product.feature_values.all(), key=lambda row: row.feature.key)
    }


def product_access_days(product: Product) -> int | None:
    """How many days a one-time purchase of the product grants its features (None: for life)."""
    try:
        return product.access.duration_days
    except ProductAccess.DoesNotExist:
        return None


def product_fetch(pk: str) -> Product:
    return Product.objects.select_related("project").prefetch_related("feature_values__feature").get(pk=pk)


def price_fetch(pk: str) -> Price:
    return Price.objects.select_related("project", "product", "meter").get(pk=pk)
