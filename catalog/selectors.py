"""Reads of the catalog: features (every selector takes the project), what a product gives, and the re-reads the
services make of a product or price they already hold (with the relations their snapshots and Stripe sync use).

Products and prices of a project are `catalog.selectors.product_list` / `price_list`; the catalog API lists and
renders them through `product_list_detailed` / `product_get_detailed` / `price_search`."""

from typing import Any

from django.db.models import Q, QuerySet

from catalog import statements
from catalog.models import Feature, Price, Product, ProductAccess, ProductDraft
from catalog.rules import FeatureValue
from core.errors import NotFound
from projects.models import Project


def feature_list(*, project: Project, feature_type: str | None = None) -> QuerySet[Feature]:
    features = Feature.objects.filter(project=project)
    if feature_type:
        features = features.filter(type=feature_type)
    return features


def feature_by_key(*, project: Project, key: str, param: str = "feature") -> Feature:
    """The feature a tenant names by its key (the entitlement API's `feature`); 404 for any other."""
    feature = Feature.objects.filter(project=project, key=key).first()
    if feature is None:
        raise NotFound(f"No such feature: {key!r}.", param=param)
    return feature


def feature_get(*, project: Project, key_or_id: str, param: str | None = None) -> Feature:
    feature = feature_list(project=project).filter(Q(key=key_or_id) | Q(pk=key_or_id)).first()
    if feature is None:
        raise NotFound(f"No such feature: {key_or_id!r}.", param=param)
    return feature


def product_list_detailed(*, project: Project, active: bool | None = None) -> QuerySet[Product]:
    """Products with what the API renders of them: their access and feature values."""
    products = (
        product_list(project=project).select_related("access").prefetch_related("feature_values__feature")
    )
    if active is not None:
        products = products.filter(active=active)
    return products


def product_get_detailed(*, project: Project, key_or_id: str, param: str | None = None) -> Product:
    product = product_get(project=project, key_or_id=key_or_id, param=param)
    return product_list_detailed(project=project).get(pk=product.pk)


def price_search(
    *, project: Project, active: bool | None = None, product: str | None = None, price_type: str | None = None
) -> QuerySet[Price]:
    """Prices by active flag, product (key or id) and type (all optional)."""
    prices = price_list(project=project)
    if active is not None:
        prices = prices.filter(active=active)
    if product:
        prices = prices.filter(Q(product__key=product) | Q(product_id=product))
    if price_type:
        prices = prices.filter(type=price_type)
    return prices


def product_features(product: Product) -> dict[str, Any]:
    """A product's feature values in the API's shape (`rules.FeatureValue.api`)."""
    return {
        row.feature.key: FeatureValue.of(row).api()
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


def product_list(*, project: Project) -> QuerySet[Product]:
    return Product.objects.filter(project=project)


def product_get(*, project: Project, key_or_id: str, param: str | None = None) -> Product:
    product = Product.objects.filter(Q(key=key_or_id) | Q(pk=key_or_id), project=project).first()
    if product is None:
        raise NotFound(f"No such product: {key_or_id!r}.", param=param)
    return product


def price_list(*, project: Project) -> QuerySet[Price]:
    return Price.objects.filter(project=project).select_related("product", "meter")


def price_get(*, project: Project, key_or_id: str, param: str | None = None) -> Price:
    price = price_list(project=project).filter(Q(key=key_or_id) | Q(pk=key_or_id)).first()
    if price is None:
        raise NotFound(f"No such price: {key_or_id!r}.", param=param)
    return price


def price_for_stripe(*, project: Project, stripe_price_id: str) -> Price | None:
    price = statements.PRICE_FOR_STRIPE.first(project_id=project.pk, stripe_price_id=stripe_price_id)
    if price is None:  # an older Stripe price of ours that a later amount change replaced
        for candidate in (
            Price.objects.select_related("product").filter(project=project).exclude(stripe_price_history=[])
        ):
            if stripe_price_id in candidate.stripe_price_history:
                return candidate
    return price


def product_prices_by_stripe_price(product: Product) -> dict[str, Price]:
    """Each Stripe price a price of `product` has or had (an amount change leaves the old one to the subscribers
    on it), to its price."""
    found: dict[str, Price] = {}
    for price in Price.objects.filter(product=product):
        for stripe_price_id in [*price.stripe_price_history, price.stripe_price_id]:
            if stripe_price_id:
                found[stripe_price_id] = price
    return found


def currencies_known() -> set[str]:
    """Every currency a customer, payment or invoice can be in: the catalog's prices' and the projects' defaults.
    The back office's currency filters offer them across projects (the one read here that takes none), instead of
    reading every row of a large table for its distinct values."""
    currencies = set(Price.objects.values_list("currency", flat=True).distinct())
    currencies |= set(Project.objects.values_list("default_currency", flat=True).distinct())
    return currencies


def product_draft_get(product: Product) -> ProductDraft:
    """The product's draft (404 `no_draft` without one), its product loaded."""
    draft = ProductDraft.objects.select_related("product").filter(product=product).first()
    if draft is None:
        raise NotFound("The product has no draft.", code="no_draft")
    return draft
