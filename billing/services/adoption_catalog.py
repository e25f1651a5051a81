"""An adoption's catalog steps: the mapping's features, the Stripe products it maps (and their prices, a metered
one linking the metered feature the mapping's `meters` names to its Stripe meter) through the catalog's adoption
services, products it does not map reported (never guessed), then the account's coupons and promotion codes as
the discount mirror's rows. Each object another project owns is skipped first (`adoption_ownership`). Nothing is
written to Stripe."""

from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from billing.models import Coupon, PromotionCode
from billing.services.adoption_ownership import held_by_another_project
from billing.services.adoption_state import Adoption
from billing.services.discounts import audit_coupon, coupon_snapshot, promotion_code_snapshot
from catalog.models import Feature, Price, Product
from catalog.selectors import feature_list
from catalog.services.features import feature_create
from catalog.services.stripe_adopt import (
    feature_meter_adopt,
    meter_unsupported,
    price_adopt,
    price_unsupported,
    product_adopt,
)
from core.audit import audit_record
from core.errors import InvalidRequest
from core.wording import with_article
from stripe_gateway.gateway import from_timestamp, stripe_id


def features_adopt(state: Adoption) -> set[str]:
    """Creates the mapping's features the project lacks; returns the keys still to be created (a dry run's)."""
    existing = {f.key: f for f in feature_list(project=state.project)}
    pending = set()
    for index, declared in enumerate(state.mapping.features):
        current = existing.get(declared.key)
        if current is not None:
            if current.type != declared.type:
                raise InvalidRequest(
                    f"mapping.features[{index}].type: {declared.key!r} exists as {with_article(current.type)} feature.",
                    code="invalid_mapping",
                    param=f"mapping.features[{index}].type",
                )
            state.report.count("features", "unchanged")
            continue
        state.report.count("features", "created", f"create feature {declared.key} ({declared.type})")
        if state.dry_run:
            pending.add(declared.key)
            continue
        feature_create(
            project=state.project,
            actor=state.actor,
            key=declared.key,
            name=declared.name,
            type=declared.type,
            unit=declared.unit,
        )
    return pending


def products_adopt(state: Adoption, pending_features: set[str]) -> dict[str, Product | None]:
    """The mapped Stripe products as catalog products (Stripe product id → row; None: a dry run's to create).
    Products the mapping does not name are counted and listed as unmapped."""
    adopted: dict[str, Product | None] = {}
    for stripe_product in state.reader.each("products", {}):
        if held_by_another_project(state, "products", stripe_product):
            continue
        mapped = state.mapping.product_for(stripe_product["id"])
        if mapped is None:
            state.report.count("products", "unmapped")
            state.report.note(
                "unmapped_products", {"id": stripe_product["id"], "name": stripe_product.get("name") or ""}
            )
            continue
        if state.dry_run and pending_features & set(mapped.features):
            # Its features do not exist yet, so their values cannot be checked against them: only whether the
            # product would be created or updated is told.
            exists = Product.objects.filter(project=state.project, stripe_product_id=stripe_product["id"])
            product, outcome = exists.first(), "updated" if exists.exists() else "created"
        else:
            product, outcome = product_adopt(
                project=state.project,
                actor=state.actor,
                stripe_product=stripe_product,
                key=mapped.key,
                features=mapped.features,
                dry_run=state.dry_run,
            )
        state.report.count(
            "products", outcome, f"{_verb(outcome)} product {mapped.key} from {stripe_product['id']}"
        )
        adopted[stripe_product["id"]] = product
        state.products.add(stripe_product["id"])
    missing = [p.stripe_product for p in state.mapping.products if p.stripe_product not in adopted]
    for stripe_product_id in missing:
        state.report.note("mapped_products_not_found", stripe_product_id)
    return adopted


def prices_adopt(state: Adoption, products: dict[str, Product | None]) -> None:
    """Every price of a mapped product (active or not: subscriptions may still bill an archived one), its tiers
    read with it. A price the catalog cannot hold as it is is skipped and listed with what to do about it."""
    for stripe_price in state.reader.each("prices", {"expand": ["data.tiers"]}):
        stripe_product = stripe_id(stripe_price.get("product"))
        if held_by_another_project(state, "prices", stripe_price, parents=[stripe_product]):
            continue
        if stripe_product not in products:
            state.report.count("prices", "unmapped")
            continue
        meter, meter_reason = _meter_for(state, stripe_price)
        _, outcome = price_adopt(
            project=state.project,
            actor=state.actor,
            product=products[stripe_product],
            stripe_price=stripe_price,
            meter=meter,
            dry_run=state.dry_run,
        )
        if outcome == "skipped":
            reason = price_unsupported(stripe_price) or meter_reason
            state.skipped_prices[stripe_price["id"]] = reason
            state.report.note("skipped_prices", {"id": stripe_price["id"], "reason": reason})
        else:
            state.prices.add(stripe_price["id"])
        state.report.count(
            "prices", outcome, f"{_verb(outcome)} price {stripe_price['id']} of {stripe_product}"
        )


def _meter_for(state: Adoption, stripe_price: dict[str, Any]) -> tuple[Feature | None, str]:
    """The metered feature a metered price bills (its Stripe meter linked to it), or why there is none."""
    recurring = stripe_price.get("recurring") or {}
    if recurring.get("usage_type") != Price.UsageType.METERED:
        return None, ""
    meter_id = str(recurring.get("meter") or "")
    if not meter_id:
        return None, "metered without a billing meter: Tollgate reports usage to Stripe billing meters"
    feature_key = state.mapping.meters.get(meter_id)
    if feature_key is None:
        return None, (
            f"metered, billing meter {meter_id}: name the metered feature it counts in the mapping's "
            f"`meters` ({meter_id}: <feature key>) and adopt again"
        )
    if meter_id in state.meter_features:
        return state.meter_features[meter_id]
    feature = Feature.objects.filter(project=state.project, key=feature_key).first()
    declared = next((f for f in state.mapping.features if f.key == feature_key), None)
    kind = feature.type if feature is not None else (declared.type if declared else None)
    if kind != Feature.Type.METERED:
        raise InvalidRequest(
            f"mapping.meters.{meter_id}: {feature_key!r} is not a metered feature of the project or the mapping.",
            code="invalid_mapping",
            param=f"mapping.meters.{meter_id}",
        )
    if state.stripe_meters is None:
        state.stripe_meters = {m["id"]: m for m in state.reader.each("billing.meters", {})}
    stripe_meter = state.stripe_meters.get(meter_id)
    reason = meter_unsupported(stripe_meter, meter_id)
    if stripe_meter is not None and held_by_another_project(state, "meters", stripe_meter):
        reason = f"billing meter {meter_id} is another project's: its usage is not this project's to report"
    if reason or stripe_meter is None:
        state.meter_features[meter_id] = (None, reason)
        return None, reason
    if (
        feature is None
    ):  # a dry run's feature still to be created (a run creates it first): it would be linked
        feature = Feature(project=state.project, key=feature_key, type=Feature.Type.METERED)
        outcome = "created"
    else:
        outcome = feature_meter_adopt(
            project=state.project,
            actor=state.actor,
            feature=feature,
            stripe_meter=stripe_meter,
            dry_run=state.dry_run,
        )
    state.report.count("meters", outcome, f"link feature {feature_key} to billing meter {meter_id}")
    state.meter_features[meter_id] = (feature, "")
    return feature, ""


def coupons_adopt(state: Adoption) -> None:
    """The account's coupons (keyed by their Stripe id, as Tollgate's coupons are), then its promotion codes of
    those coupons."""
    coupons: dict[str, Coupon | None] = {}
    for stripe_coupon in state.reader.each("coupons", {}):
        if held_by_another_project(state, "coupons", stripe_coupon):
            continue
        coupon = Coupon.objects.filter(project=state.project, stripe_coupon_id=stripe_coupon["id"]).first()
        if coupon is not None:
            state.report.count("coupons", "unchanged")
        elif state.dry_run:
            state.report.count("coupons", "created", f"create coupon {stripe_coupon['id']}")
        else:
            coupon = _coupon_create(state, stripe_coupon)
            state.report.count(
                "coupons",
                "created" if coupon else "conflict",
                f"create coupon {stripe_coupon['id']}" if coupon else "",
            )
        coupons[stripe_coupon["id"]] = coupon
    for promo in state.reader.each("promotion_codes", {}):
        coupon_id = stripe_id((promo.get("promotion") or {}).get("coupon") or promo.get("coupon"))
        if held_by_another_project(state, "promotion_codes", promo, parents=[coupon_id]):
            continue
        if coupon_id not in coupons:
            state.report.count("promotion_codes", "coupon_not_adopted")
            continue
        found = PromotionCode.objects.filter(project=state.project, stripe_promotion_code_id=promo["id"])
        if found.exists():
            state.report.count("promotion_codes", "unchanged")
            continue
        taken = PromotionCode.objects.annotate(lower=Lower("code")).filter(
            project=state.project, lower=str(promo.get("code") or "").lower()
        )
        if taken.exists():
            state.report.count("promotion_codes", "conflict")
            state.report.note("promotion_code_conflicts", promo["id"])
            continue
        line = f"create promotion code {promo.get('code')} of coupon {coupon_id}"
        state.report.count("promotion_codes", "created", line)
        coupon = coupons[coupon_id]
        if not state.dry_run and coupon is not None:
            _promotion_code_create(state, promo, coupon)


def _coupon_create(state: Adoption, stripe_coupon: dict[str, Any]) -> Coupon | None:
    applies = stripe_coupon.get("applies_to") or {}
    products = [stripe_id(p) for p in (applies.get("products") or [])]
    percent = stripe_coupon.get("percent_off")
    coupon = Coupon(
        project=state.project,
        key=stripe_coupon["id"],
        name=str(stripe_coupon.get("name") or "")[:40],
        percent_off=Decimal(str(percent)).quantize(Decimal("0.01")) if percent is not None else None,
        amount_off=stripe_coupon.get("amount_off") if percent is None else None,
        currency=str(stripe_coupon.get("currency") or "").lower() if percent is None else "",
        duration=str(stripe_coupon.get("duration") or Coupon.Duration.ONCE),
        duration_in_months=stripe_coupon.get("duration_in_months"),
        max_redemptions=stripe_coupon.get("max_redemptions"),
        redeem_by=from_timestamp(stripe_coupon.get("redeem_by")),
        applies_to=list(
            Product.objects.filter(project=state.project, stripe_product_id__in=products).values_list(
                "pk", flat=True
            )
        ),
        stripe_coupon_id=stripe_coupon["id"],
    )
    try:
        with transaction.atomic():
            coupon.save(force_insert=True)
            audit_coupon(
                actor=state.actor, coupon=coupon, action="coupon.adopted", after=coupon_snapshot(coupon)
            )
    except IntegrityError:  # its key is held by another coupon of the project
        state.report.note("coupon_conflicts", stripe_coupon["id"])
        return None
    return coupon


def _promotion_code_create(state: Adoption, promo: dict[str, Any], coupon: Coupon) -> None:
    row = PromotionCode(
        project=state.project,
        coupon=coupon,
        code=str(promo.get("code") or "")[:100],
        max_redemptions=promo.get("max_redemptions"),
        expires_at=from_timestamp(promo.get("expires_at")),
        first_time_transaction=bool((promo.get("restrictions") or {}).get("first_time_transaction")),
        active=bool(promo.get("active", True)),
        stripe_promotion_code_id=promo["id"],
    )
    with transaction.atomic():
        row.save(force_insert=True)
        audit_record(
            actor=state.actor,
            action="promotion_code.adopted",
            target=row,
            project=state.project,
            after=promotion_code_snapshot(row),
        )


def _verb(outcome: str) -> str:
    return {"created": "create", "updated": "update", "unchanged": "keep", "skipped": "skip"}.get(
        outcome, outcome
    )
