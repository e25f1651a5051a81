"""Catalog rows for Stripe products and prices that already exist (adopting a Stripe account): the product a
mapping names, with the feature values the mapping gives it, and its Stripe prices, linked by their Stripe ids.
Nothing is written to Stripe: the tenant's products and prices stay as they are there.

Each function answers what it did (or, with `dry_run`, what it would do): "created", "updated" or "unchanged";
a price Tollgate cannot represent is "skipped" with the reason.
"""

import re
from typing import Any

from django.db import IntegrityError, transaction

from catalog.models import Price, Product
from catalog.public import public_plans_changed
from catalog.selectors import product_features, product_fetch
from catalog.services.prices import price_insert
from catalog.services.products import _features_normalized, _features_resolve, _product_values_replace
from catalog.snapshots import product_snapshot
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict
from projects.models import Project
from stripe_gateway.gateway import stripe_id

_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,100}$")


def product_adopt(
    *,
    project: Project,
    actor: Actor,
    stripe_product: dict[str, Any],
    key: str,
    features: dict[str, Any],
    dry_run: bool = False,
) -> tuple[Product | None, str]:
    """The project's product for `stripe_product` (found by its Stripe id, else created under `key`), giving
    `features` (validated against the project's features: 400 `unknown_feature`, as the API answers). A key
    held by another product is 409 `key_taken`."""
    resolved = _features_resolve(project=project, features=features)
    wanted = _features_normalized(resolved)
    product = Product.objects.filter(project=project, stripe_product_id=stripe_product["id"]).first()
    if product is None:
        if Product.objects.filter(project=project, key=key).exists():
            raise Conflict(
                f"products: the key {key!r} is held by a product that is not {stripe_product['id']}.",
                code="key_taken",
                param="products",
            )
        if dry_run:
            return None, "created"
        product = Product(
            project=project,
            key=key,
            name=str(stripe_product.get("name") or key)[:200],
            description=str(stripe_product.get("description") or ""),
            active=bool(stripe_product.get("active", True)),
            stripe_product_id=stripe_product["id"],
        )
        try:
            with transaction.atomic():
                product.save(force_insert=True)
                public_plans_changed(project=project)
                _product_values_replace(product, resolved)
                audit_record(
                    actor=actor,
                    action="product.adopted",
                    target=product,
                    project=project,
                    after={**product_snapshot(product_fetch(product.pk)), "stripe": stripe_product["id"]},
                )
        except IntegrityError as exc:
            raise Conflict(
                f"products: a product with key {key!r} already exists.", code="key_taken", param="products"
            ) from exc
        return product, "created"
    current = product_features(product_fetch(product.pk))
    if current == wanted:
        return product, "unchanged"
    if dry_run:
        return product, "updated"
    with transaction.atomic():
        locked = Product.objects.select_for_update().get(pk=product.pk)
        before = product_snapshot(product_fetch(locked.pk))
        _product_values_replace(locked, resolved)
        audit_record(
            actor=actor,
            action="product.updated",
            target=locked,
            project=project,
            reason="Stripe account adoption: the mapping's feature values",
            before=before,
            after=product_snapshot(product_fetch(locked.pk)),
        )
    return locked, "updated"


def price_unsupported(stripe_price: dict[str, Any]) -> str:
    """Why a Stripe price cannot be a catalog price ("" when it can)."""
    recurring = stripe_price.get("recurring") or {}
    if stripe_price.get("billing_scheme") == "tiered":
        return "tiered prices are not adopted"
    if recurring.get("usage_type") == "metered":
        return "metered prices are not adopted (their meter is not a feature here)"
    if stripe_price.get("unit_amount") is None:
        return "custom or decimal amounts are not adopted"
    return ""


def price_adopt(
    *,
    project: Project,
    actor: Actor,
    product: Product | None,
    stripe_price: dict[str, Any],
    dry_run: bool = False,
) -> tuple[Price | None, str]:
    """The project's price for `stripe_price` (found by its Stripe id, else created as a price of `product`,
    keyed by its lookup key when that is a free slug, else by its Stripe id). Its terms are Stripe's and fixed;
    an existing row is left as it is."""
    existing = Price.objects.filter(project=project, stripe_price_id=stripe_price["id"]).first()
    if existing is not None:
        return existing, "unchanged"
    if price_unsupported(stripe_price):
        return None, "skipped"
    if dry_run or product is None:
        return None, "created"
    lookup_key = str(stripe_price.get("lookup_key") or "")
    key = (
        lookup_key
        if _SLUG.match(lookup_key) and not Price.objects.filter(project=project, key=lookup_key).exists()
        else stripe_price["id"]
    )
    recurring = stripe_price.get("recurring") or {}
    price = Price(
        project=project,
        key=key,
        product=product,
        currency=str(stripe_price.get("currency") or "").lower(),
        unit_amount=int(stripe_price["unit_amount"]),
        type=Price.Type.RECURRING if recurring else Price.Type.ONE_TIME,
        interval=str(recurring.get("interval") or ""),
        interval_count=int(recurring.get("interval_count") or 1),
        trial_days=recurring.get("trial_period_days"),
        tax_behavior=str(stripe_price.get("tax_behavior") or Price.TaxBehavior.UNSPECIFIED),
        active=bool(stripe_price.get("active", True)),
        stripe_price_id=stripe_price["id"],
    )
    if stripe_id(stripe_price.get("product")) != product.stripe_product_id:
        raise Conflict(
            f"{stripe_price['id']} is not a price of {product.stripe_product_id}.",
            code="price_product_mismatch",
        )
    price_insert(price=price, actor=actor, action="price.adopted")
    return price, "created"
