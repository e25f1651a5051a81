"""Catalog rows for Stripe products and prices that already exist (adopting a Stripe account): the product a
mapping names, with the feature values the mapping gives it, and its Stripe prices, linked by their Stripe ids.
Nothing is written to Stripe: the tenant's products and prices stay as they are there.

Each function answers what it did (or, with `dry_run`, what it would do): "created", "updated" or "unchanged";
a price Tollgate cannot represent as it is is "skipped" with the reason (`price_unsupported`), never guessed:
per-unit and tiered (graduated or volume, whole amounts) prices are adopted, licensed or metered (a metered one
bills the metered feature its Stripe meter counts, which the feature is linked to); custom amounts, fractional
amounts and `transform_quantity` are not.
"""

import re
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from catalog.models import Feature, Price, Product
from catalog.public import public_plans_changed
from catalog.rules import tiers_parse
from catalog.selectors import product_features, product_fetch
from catalog.services.prices import price_insert
from catalog.services.products import _features_normalized, _features_resolve, _product_values_replace
from catalog.snapshots import product_snapshot
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidRequest
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
    """Why a Stripe price cannot be a catalog price faithfully ("" when it can), saying what the operator may
    do. `stripe_price` as listed with `expand[]=data.tiers` (Stripe renders a tiered price's tiers only then).
    A metered price also needs the feature its meter counts (`meter_unsupported`)."""
    if stripe_price.get("custom_unit_amount"):
        return (
            "a custom amount (the customer chooses what to pay): the catalog's prices have fixed amounts; "
            "keep selling it outside Tollgate, or replace it with a fixed price at Stripe and adopt again"
        )
    if stripe_price.get("transform_quantity"):
        return (
            "transform_quantity (units billed in packages): the catalog bills every unit; move its "
            "subscriptions to a per-unit or tiered price at Stripe and adopt again"
        )
    if stripe_price.get("billing_scheme") == "tiered":
        try:
            tiers_parse(_tiers_of(stripe_price))
        except InvalidRequest as exc:
            return f"its tiers are not the catalog's ({exc.message}): replace the price at Stripe and adopt again"
        if stripe_price.get("tiers_mode") not in Price.TiersMode.values:
            return "a tiered price without graduated or volume tiers"
        return ""
    if stripe_price.get("unit_amount") is None:
        return (
            f"a fractional unit amount ({stripe_price.get('unit_amount_decimal')} minor units): the catalog's "
            "amounts are whole minor units; replace the price at Stripe and adopt again"
        )
    return ""


def _tiers_of(stripe_price: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A tiered Stripe price's tiers in the catalog's shape (None: not read; a fractional amount is kept as its
    decimal string, which the catalog's check refuses)."""
    tiers = stripe_price.get("tiers")
    if tiers is None:
        return None
    shaped = []
    for tier in tiers:
        amounts: dict[str, Any] = {}
        for name in ("unit_amount", "flat_amount"):
            amount = tier.get(name)
            decimal = tier.get(f"{name}_decimal")
            if amount is None and decimal not in (None, ""):
                exact = Decimal(str(decimal))
                amount = int(exact) if exact == exact.to_integral_value() else str(decimal)
            amounts[name] = amount
        up_to = tier.get("up_to")
        shaped.append({"up_to": "inf" if up_to is None else up_to, **amounts})
    return shaped


def meter_unsupported(stripe_meter: dict[str, Any] | None, meter_id: str) -> str:
    """Why Tollgate's usage reports cannot feed a Stripe billing meter ("" when they can): Tollgate sends
    `{stripe_customer_id, value}` and sums quantities."""
    if stripe_meter is None:
        return f"its billing meter {meter_id} was not found at Stripe"
    mapping = stripe_meter.get("customer_mapping") or {}
    value = stripe_meter.get("value_settings") or {}
    formula = (stripe_meter.get("default_aggregation") or {}).get("formula")
    if mapping.get("event_payload_key", "stripe_customer_id") != "stripe_customer_id":
        return (
            f"its billing meter {meter_id} reads the customer from {mapping.get('event_payload_key')!r}; "
            "Tollgate reports it as 'stripe_customer_id'"
        )
    if value.get("event_payload_key", "value") != "value":
        return (
            f"its billing meter {meter_id} reads the value from {value.get('event_payload_key')!r}; "
            "Tollgate reports it as 'value'"
        )
    if formula not in (None, "sum"):
        return f"its billing meter {meter_id} aggregates by {formula!r}; Tollgate's usage is summed"
    if stripe_meter.get("status") not in (None, "active"):
        return f"its billing meter {meter_id} is {stripe_meter.get('status')}"
    return ""


def feature_meter_adopt(
    *, project: Project, actor: Actor, feature: Feature, stripe_meter: dict[str, Any], dry_run: bool = False
) -> str:
    """Links a metered feature to the Stripe billing meter its adopted prices bill (Tollgate then reports the
    feature's usage there, under the meter's event name): "created" (with `dry_run`, would be) or
    "unchanged"; a feature linked to another meter, or an event name another feature reports to, is 409
    `meter_taken`."""
    if feature.stripe_meter_id == stripe_meter["id"]:
        return "unchanged"
    event_name = str(stripe_meter.get("event_name") or "")
    if feature.stripe_meter_id:
        raise Conflict(
            f"meters: {feature.key!r} reports to the Stripe meter {feature.stripe_meter_id}, not "
            f"{stripe_meter['id']}.",
            code="meter_taken",
            param="meters",
        )
    if Feature.objects.filter(stripe_meter_event_name=event_name).exclude(pk=feature.pk).exists():
        raise Conflict(
            f"meters: the Stripe meter event name {event_name!r} is another feature's.",
            code="meter_taken",
            param="meters",
        )
    if dry_run:
        return "created"
    with transaction.atomic():
        linked = Feature.objects.filter(pk=feature.pk, stripe_meter_id="").update(
            stripe_meter_id=stripe_meter["id"], stripe_meter_event_name=event_name
        )
        if not linked:
            raise Conflict(f"meters: {feature.key!r} was given a meter meanwhile.", code="meter_taken")
        audit_record(
            actor=actor,
            action="feature.meter_adopted",
            target=feature,
            project=project,
            after={"stripe_meter": stripe_meter["id"], "event_name": event_name},
        )
    feature.refresh_from_db(fields=["stripe_meter_id", "stripe_meter_event_name"])
    return "created"


def price_adopt(
    *,
    project: Project,
    actor: Actor,
    product: Product | None,
    stripe_price: dict[str, Any],
    meter: Feature | None = None,
    dry_run: bool = False,
) -> tuple[Price | None, str]:
    """The project's price for `stripe_price` (found by its Stripe id, else created as a price of `product`,
    keyed by its lookup key when that is a free slug, else by its Stripe id; a metered one billing `meter`,
    the metered feature its meter counts). Its terms are Stripe's and fixed; an existing row is left as it is.
    "skipped" when the catalog cannot hold it as it is (`price_unsupported`; a metered one without `meter`)."""
    existing = Price.objects.filter(project=project, stripe_price_id=stripe_price["id"]).first()
    if existing is not None:
        return existing, "unchanged"
    recurring = stripe_price.get("recurring") or {}
    metered = recurring.get("usage_type") == Price.UsageType.METERED
    if price_unsupported(stripe_price) or (metered and meter is None):
        return None, "skipped"
    if dry_run or product is None:
        return None, "created"
    lookup_key = str(stripe_price.get("lookup_key") or "")
    key = (
        lookup_key
        if _SLUG.match(lookup_key) and not Price.objects.filter(project=project, key=lookup_key).exists()
        else stripe_price["id"]
    )
    tiered = stripe_price.get("billing_scheme") == Price.BillingScheme.TIERED
    price = Price(
        project=project,
        key=key,
        product=product,
        currency=str(stripe_price.get("currency") or "").lower(),
        unit_amount=None if tiered else int(stripe_price["unit_amount"]),
        billing_scheme=Price.BillingScheme.TIERED if tiered else Price.BillingScheme.PER_UNIT,
        tiers_mode=str(stripe_price.get("tiers_mode") or "") if tiered else "",
        tiers=tiers_parse(_tiers_of(stripe_price)) if tiered else [],
        type=Price.Type.RECURRING if recurring else Price.Type.ONE_TIME,
        interval=str(recurring.get("interval") or ""),
        interval_count=int(recurring.get("interval_count") or 1),
        trial_days=recurring.get("trial_period_days"),
        usage_type=Price.UsageType.METERED if metered else Price.UsageType.LICENSED,
        meter=meter if metered else None,
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
