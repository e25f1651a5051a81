"""The catalog: features, products (with the feature values they give), prices, and their Stripe mirror.

Every write follows ARCHITECTURE.md: validate everything first (a refused request leaves no trace, locally or at
Stripe), write the local row and its audit row in one transaction, then call Stripe outside any transaction
with an idempotency key derived from our ids, then store the Stripe id with a compare-and-set. A Stripe failure
leaves the row without a Stripe id, so it never claims to be synced; calling the same service again (an API
retry) or `*_stripe_sync` (`sync_catalog`) completes it without creating a second Stripe object:

- a Stripe product is created under our own product id (Stripe allows a custom product id), so a second create
  finds the first;
- a Stripe price holds the lookup key `<project slug>:<price key>`, so a price whose creation answer was lost
  is found by its lookup key and adopted;
- a Stripe meter is found by its event name `tg_<project slug>_<feature key>` before one is created.

Stripe prices are immutable in amount, currency and tax behaviour: changing one of those creates a new Stripe
price that takes over the lookup key (`transfer_lookup_key`), and the old one is kept in `stripe_price_history`.
The old Stripe price stays active: subscriptions created earlier keep billing on it (changing a subscription's
price is an explicit subscription update), and nothing new can reach it, because Tollgate only ever hands out
the current `stripe_price_id` and the lookup key moved away from it.

The declarative `sync_catalog` (plan, then apply through the same services) lives at the end of this module.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from billing.gateway import StripeGateway, gateway_for, idempotency_key
from billing.models import Price, Product
from billing.selectors import price_list, product_list
from core.actors import Actor
from core.errors import Conflict, InvalidRequest, NotFound
from core.services import audit_record
from entitlements.models import Feature, ProductAccess, ProductFeature
from entitlements.services import entitlements_project_changed
from projects.models import Project

_UNSET: Any = object()

# Stripe caps a price's billing period at three years.
MAX_INTERVAL_COUNT = {"day": 1095, "week": 156, "month": 36, "year": 3}
MAX_TRIAL_DAYS = 730  # Stripe's limit for a trial period
MAX_UNIT_AMOUNT = 99_999_999  # Stripe's limit for a price's unit_amount (8 digits)
MAX_FEATURE_AMOUNT = 10**15
COUNTED_TYPES = (Feature.Type.METERED, Feature.Type.CREDITS, Feature.Type.ALLOCATION)


# --- selectors of features (read-only; every one takes the project) ---------------------------------------------


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


def price_lookup_key(price: Price) -> str:
    """The Stripe lookup key of a price: namespaced by project, since lookup keys are unique per Stripe account."""
    return f"{price.project.slug}:{price.key}"


def meter_event_name(*, project: Project, feature: Feature) -> str:
    """The Stripe meter event name of a metered feature: namespaced, since event names are unique per account."""
    return f"tg_{project.slug}_{feature.key}"


# --- validation shared by the API services and sync_catalog -----------------------------------------------------


def _is_amount(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_FEATURE_AMOUNT


def feature_value_parse(*, feature_type: str, value: Any, param: str) -> tuple[Any, bool]:
    """Checks that `value` fits a feature of `feature_type`; returns (stored value, per_unit)."""
    if feature_type == Feature.Type.BOOLEAN:
        if not isinstance(value, bool):
            raise InvalidRequest(
                f"{param}: a boolean feature takes true or false.", code="invalid_feature_value", param=param
            )
        return value, False
    if feature_type in COUNTED_TYPES:
        if value is None:
            return None, False  # unlimited
        if isinstance(value, dict):
            if set(value) != {"per_unit"} or not _is_amount(value["per_unit"]):
                raise InvalidRequest(
                    f'{param}: a per-unit value is {{"per_unit": <integer ≥ 0>}}.',
                    code="invalid_feature_value",
                    param=param,
                )
            return value["per_unit"], True
        if not _is_amount(value):
            raise InvalidRequest(
                f'{param}: a {feature_type} feature takes an integer ≥ 0, null (unlimited) or {{"per_unit": n}}.',
                code="invalid_feature_value",
                param=param,
            )
        return value, False
    return value, False  # static: any JSON value


def _features_resolve(*, project: Project, features: dict[str, Any]) -> dict[str, tuple[Feature, Any, bool]]:
    found = {f.key: f for f in feature_list(project=project).filter(key__in=list(features))}
    resolved: dict[str, tuple[Feature, Any, bool]] = {}
    for key in sorted(features):
        param = f"features.{key}"
        feature = found.get(key)
        if feature is None:
            raise InvalidRequest(f"{param}: no such feature.", code="unknown_feature", param=param)
        value, per_unit = feature_value_parse(feature_type=feature.type, value=features[key], param=param)
        resolved[key] = (feature, value, per_unit)
    return resolved


def _features_normalized(resolved: dict[str, tuple[Feature, Any, bool]]) -> dict[str, Any]:
    return {key: {"per_unit": value} if per_unit else value for key, (_, value, per_unit) in resolved.items()}


@dataclass(frozen=True)
class PriceTerms:
    """A price's billing terms, normalised (a one-time price has no interval, trial or usage type)."""

    type: str
    interval: str
    interval_count: int
    trial_days: int | None
    usage_type: str
    meter_key: str | None


def price_terms_check(
    *,
    type: str,
    interval: str | None,
    interval_count: int | None,
    trial_days: int | None,
    usage_type: str | None,
    meter_key: str | None,
    meter_type: str | None,
) -> PriceTerms:
    """Validates a price's terms; `meter_type` is the type of the feature `meter_key` names (None: no such one)."""
    if type == Price.Type.ONE_TIME:
        for param, value, allowed in (
            ("interval", interval, ("", None)),
            ("interval_count", interval_count, (1, None)),
            ("trial_days", trial_days, (None,)),
            ("usage_type", usage_type, (Price.UsageType.LICENSED, None)),
            ("meter", meter_key, ("", None)),
        ):
            if value not in allowed:
                raise InvalidRequest(
                    f"{param}: a one_time price takes no {param}.", code="invalid_parameter", param=param
                )
        return PriceTerms(Price.Type.ONE_TIME, "", 1, None, Price.UsageType.LICENSED, None)
    if not interval:
        raise InvalidRequest(
            "interval: a recurring price needs an interval (day, week, month or year).",
            code="parameter_missing",
            param="interval",
        )
    count = interval_count or 1
    if count > MAX_INTERVAL_COUNT[interval]:
        raise InvalidRequest(
            f"interval_count: at most {MAX_INTERVAL_COUNT[interval]} for interval={interval} "
            "(the longest billing period is three years).",
            code="invalid_parameter",
            param="interval_count",
        )
    usage = usage_type or Price.UsageType.LICENSED
    if usage == Price.UsageType.METERED:
        if not meter_key:
            raise InvalidRequest(
                "meter: a metered price needs the key of the metered feature it bills.",
                code="parameter_missing",
                param="meter",
            )
        if meter_type != Feature.Type.METERED:
            raise InvalidRequest(
                f"meter: {meter_key!r} is not a metered feature of this project.",
                code="invalid_meter",
                param="meter",
            )
    elif meter_key:
        raise InvalidRequest(
            "meter: only a metered price (usage_type=metered) takes a meter.",
            code="invalid_parameter",
            param="meter",
        )
    return PriceTerms(Price.Type.RECURRING, interval, count, trial_days, usage, meter_key or None)


# --- snapshots for the audit log --------------------------------------------------------------------------------


def _feature_snapshot(feature: Feature) -> dict[str, Any]:
    return {"key": feature.key, "name": feature.name, "type": feature.type, "unit": feature.unit}


def product_access_days(product: Product) -> int | None:
    """How many days a one-time purchase of the product grants its features (None: for life)."""
    try:
        return product.access.duration_days
    except ProductAccess.DoesNotExist:
        return None


def _product_snapshot(product: Product) -> dict[str, Any]:
    return {
        "key": product.key,
        "name": product.name,
        "description": product.description,
        "active": product.active,
        "features": product_features(product),
        "access_days": product_access_days(product),
    }


def _price_snapshot(price: Price) -> dict[str, Any]:
    return {
        "key": price.key,
        "product": price.product_id,
        "currency": price.currency,
        "unit_amount": price.unit_amount,
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


def _idem(kind: str, object_id: str, operation: str, params: dict[str, Any]) -> str:
    """An idempotency key from our id, the operation and the parameters: a retry of the same call replays at
    Stripe; a call whose parameters changed meanwhile (found by id / lookup key / event name first) does not
    collide with it."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return idempotency_key(kind, object_id, operation, digest)


# --- features ---------------------------------------------------------------------------------------------------


def _feature_in_use(feature: Feature) -> bool:
    return (
        ProductFeature.objects.filter(feature=feature).exists()
        or Price.objects.filter(meter=feature).exists()
    )


def feature_create(
    *, project: Project, actor: Actor, key: str, name: str, type: str, unit: str | None = None
) -> Feature:
    if feature_list(project=project).filter(key=key).exists():
        raise Conflict(f"A feature with key {key!r} already exists.", code="key_taken", param="key")
    feature = Feature(project=project, key=key, name=name, type=type, unit=unit or "")
    try:
        with transaction.atomic():
            feature.save(force_insert=True)
            entitlements_project_changed(project=project)  # every answer lists every feature
            audit_record(
                actor=actor,
                action="feature.created",
                target=feature,
                project=project,
                after=_feature_snapshot(feature),
            )
    except IntegrityError as exc:
        raise Conflict(f"A feature with key {key!r} already exists.", code="key_taken", param="key") from exc
    return feature


def feature_update(
    *,
    actor: Actor,
    feature: Feature,
    key: str | None = None,
    name: str | None = None,
    type: str | None = None,
    unit: str | None = _UNSET,
) -> Feature:
    """Renames a feature or changes its unit; its type only while no product or price uses it. The key is fixed."""
    if key is not None and key != feature.key:
        raise InvalidRequest("key: a feature's key cannot be changed.", code="immutable_field", param="key")
    with transaction.atomic():
        locked = Feature.objects.select_for_update().get(pk=feature.pk)
        before = _feature_snapshot(locked)
        if type is not None and type != locked.type:
            if _feature_in_use(locked):
                raise Conflict(
                    "type: the feature is used by a product or price; its type can no longer change.",
                    code="feature_in_use",
                    param="type",
                )
            locked.type = type
        if name is not None:
            locked.name = name
        if unit is not _UNSET:
            locked.unit = unit or ""
        after = _feature_snapshot(locked)
        if after != before:
            locked.save()
            entitlements_project_changed(project=locked.project)
            audit_record(
                actor=actor,
                action="feature.updated",
                target=locked,
                project=locked.project,
                before=before,
                after=after,
            )
    return locked


def _meter_event_name_check(feature: Feature) -> str:
    """The feature's meter event name, unless another feature holds it: `tg_a_b_c` is both (slug a, key b_c) and
    (slug a_b, key c), and two projects on one Stripe account must not share a meter."""
    event_name = meter_event_name(project=feature.project, feature=feature)
    if Feature.objects.filter(stripe_meter_event_name=event_name).exclude(pk=feature.pk).exists():
        raise Conflict(
            f"meter: the Stripe meter event name {event_name!r} is taken by another project's feature.",
            code="meter_event_name_taken",
            param="meter",
        )
    return event_name


def feature_meter_ensure(*, feature: Feature) -> Feature:
    """Gives a metered feature its Stripe billing meter: found by event name, else created. Idempotent."""
    feature = Feature.objects.select_related("project").get(pk=feature.pk)
    if feature.stripe_meter_id:
        return feature
    project = feature.project
    event_name = _meter_event_name_check(feature)
    gateway = gateway_for(project)
    found = sorted(gateway.meters_by_event_name(event_name), key=lambda m: m.get("status") != "active")
    if found:
        meter = found[0]
    else:
        params = {"display_name": feature.name, "event_name": event_name}
        meter = gateway.meter_create(
            display_name=feature.name,
            event_name=event_name,
            idem=_idem("feature", feature.pk, "meter", params),
        )
    Feature.objects.filter(pk=feature.pk, stripe_meter_id="").update(
        stripe_meter_id=meter["id"], stripe_meter_event_name=event_name
    )
    feature.refresh_from_db()
    return feature


# --- products ---------------------------------------------------------------------------------------------------


def _product_access_set(product: Product, days: int | None) -> None:
    """Purchases recorded from now on last `days` (None: for life); earlier purchases keep their end."""
    if days is None:
        ProductAccess.objects.filter(product=product).delete()
    else:
        ProductAccess.objects.update_or_create(product=product, defaults={"duration_days": days})
    product._state.fields_cache.pop("access", None)  # the reverse one-to-one is cached on the instance


def _product_values_replace(product: Product, resolved: dict[str, tuple[Feature, Any, bool]]) -> None:
    ProductFeature.objects.filter(product=product).exclude(
        feature__in=[feature for feature, _, _ in resolved.values()]
    ).delete()
    for feature, value, per_unit in resolved.values():
        ProductFeature.objects.update_or_create(
            product=product, feature=feature, defaults={"value": value, "per_unit": per_unit}
        )
    # What the product gives changed for everyone holding it (or for everyone, if it is the default product).
    entitlements_project_changed(project=product.project)


def _product_fetch(pk: str) -> Product:
    return Product.objects.select_related("project").prefetch_related("feature_values__feature").get(pk=pk)


def product_create(
    *,
    project: Project,
    actor: Actor,
    key: str,
    name: str,
    description: str | None = None,
    active: bool = True,
    features: dict[str, Any] | None = None,
    access_days: int | None = None,
) -> Product:
    """Creates a product with its feature values (and, for one-time purchases, how many days they last), then
    its Stripe product.

    If a product with this key exists but was never synced to Stripe (an earlier attempt failed there) and the
    request matches it, this completes that attempt instead of refusing the key.
    """
    resolved = _features_resolve(project=project, features=features or {})
    existing = product_list(project=project).filter(key=key).first()
    if existing is not None:
        existing = _product_fetch(existing.pk)
        wanted = {
            "key": key,
            "name": name,
            "description": description or "",
            "active": active,
            "features": _features_normalized(resolved),
            "access_days": access_days,
        }
        if existing.stripe_product_id or _product_snapshot(existing) != wanted:
            raise Conflict(f"A product with key {key!r} already exists.", code="key_taken", param="key")
        return product_stripe_sync(product=existing)
    product = Product(project=project, key=key, name=name, description=description or "", active=active)
    try:
        with transaction.atomic():
            product.save(force_insert=True)
            _product_values_replace(product, resolved)
            _product_access_set(product, access_days)
            audit_record(
                actor=actor,
                action="product.created",
                target=product,
                project=project,
                after=_product_snapshot(_product_fetch(product.pk)),
            )
    except IntegrityError as exc:
        raise Conflict(f"A product with key {key!r} already exists.", code="key_taken", param="key") from exc
    return product_stripe_sync(product=product)


def product_update(
    *,
    actor: Actor,
    product: Product,
    key: str | None = None,
    name: str | None = None,
    description: str | None = None,
    active: bool | None = None,
    features: dict[str, Any] | None = None,
    access_days: int | None = _UNSET,
) -> Product:
    """Changes a product; `features` replaces the whole map; `access_days` (None: for life) applies to purchases
    recorded from now on. Deactivating it archives it at Stripe and
    deactivates its prices (reactivating it leaves them inactive: reactivate the ones to sell again)."""
    if key is not None and key != product.key:
        raise InvalidRequest("key: a product's key cannot be changed.", code="immutable_field", param="key")
    resolved = _features_resolve(project=product.project, features=features) if features is not None else None
    with transaction.atomic():
        locked = Product.objects.select_for_update().get(pk=product.pk)
        locked = _product_fetch(locked.pk)
        before = _product_snapshot(locked)
        was_active = locked.active
        for field_name, value in (("name", name), ("description", description), ("active", active)):
            if value is not None:
                setattr(locked, field_name, value)
        if resolved is not None:
            _product_values_replace(locked, resolved)
        if access_days is not _UNSET:
            _product_access_set(locked, access_days)
        if was_active and not locked.active:
            for price in Price.objects.select_for_update().filter(product=locked, active=True).order_by("pk"):
                price_before = _price_snapshot(price)
                price.active = False
                price.save(update_fields=["active", "updated_at"])
                audit_record(
                    actor=actor,
                    action="price.deactivated",
                    target=price,
                    project=locked.project,
                    reason="its product was deactivated",
                    before=price_before,
                    after=_price_snapshot(price),
                )
        current = _product_fetch(locked.pk)  # fresh feature values
        current.name, current.description, current.active = locked.name, locked.description, locked.active
        locked = current
        after = _product_snapshot(locked)
        if after != before:
            locked.save(update_fields=["name", "description", "active", "updated_at"])
            action = "product.updated"
            if was_active != locked.active:
                action = "product.deactivated" if was_active else "product.reactivated"
            audit_record(
                actor=actor, action=action, target=locked, project=locked.project, before=before, after=after
            )
    # Stripe is told the whole state every time, so a retry after a Stripe failure converges.
    locked = product_stripe_sync(product=locked)
    if active is False:
        for price in price_list(project=locked.project).filter(product=locked).exclude(stripe_price_id=""):
            price_stripe_sync(price=price)
    return locked


def _product_stripe_params(product: Product) -> dict[str, Any]:
    return {
        "name": product.name,
        "description": product.description,
        "active": product.active,
        "metadata": {"tollgate_project": product.project_id, "tollgate_product": product.pk},
    }


def product_stripe_differs(product: Product, stripe_product: dict[str, Any]) -> bool:
    wanted = _product_stripe_params(product)
    metadata = stripe_product.get("metadata") or {}
    return (
        stripe_product.get("name") != wanted["name"]
        or (stripe_product.get("description") or "") != wanted["description"]
        or stripe_product.get("active") != wanted["active"]
        or any(metadata.get(k) != v for k, v in wanted["metadata"].items())
    )


def product_stripe_sync(*, product: Product) -> Product:
    """Creates or updates the product's Stripe product to match ours (never inside a transaction)."""
    product = _product_fetch(product.pk)
    gateway = gateway_for(product.project)
    params = _product_stripe_params(product)
    if product.stripe_product_id:
        gateway.product_update(product.stripe_product_id, params)
        return product
    stripe_product = gateway.product_ensure(
        product_id=product.pk, params=params, idem=_idem("product", product.pk, "create", params)
    )
    Product.objects.filter(pk=product.pk, stripe_product_id="").update(stripe_product_id=stripe_product["id"])
    return _product_fetch(product.pk)


# --- prices -----------------------------------------------------------------------------------------------------


def _meter_type(project: Project, meter_key: str | None) -> tuple[Feature | None, str | None]:
    if not meter_key:
        return None, None
    feature = feature_list(project=project).filter(key=meter_key).first()
    return feature, (feature.type if feature else None)


def _price_fetch(pk: str) -> Price:
    return Price.objects.select_related("project", "product", "meter").get(pk=pk)


def price_create(
    *,
    project: Project,
    actor: Actor,
    key: str,
    product: Product,
    currency: str,
    unit_amount: int,
    type: str,
    interval: str | None = None,
    interval_count: int | None = None,
    trial_days: int | None = None,
    usage_type: str | None = None,
    meter: str | None = None,
    tax_behavior: str | None = None,
    active: bool = True,
) -> Price:
    """Creates a price of `product` (already resolved in `project`), then its Stripe price (and the Stripe
    product and meter when they are missing). `meter` is the key of the metered feature a metered price bills.

    If a price with this key exists but has no Stripe price (an earlier attempt failed there) and the request
    matches it, this completes that attempt instead of refusing the key.
    """
    if product.project_id != project.pk:
        raise NotFound(f"No such product: {product.pk!r}.", param="product")
    meter_feature, meter_type = _meter_type(project, meter)
    terms = price_terms_check(
        type=type,
        interval=interval,
        interval_count=interval_count,
        trial_days=trial_days,
        usage_type=usage_type,
        meter_key=meter,
        meter_type=meter_type,
    )
    if meter_feature is not None and terms.meter_key and not meter_feature.stripe_meter_id:
        _meter_event_name_check(meter_feature)  # refuse before writing rather than after
    if active and not product.active:
        raise Conflict(
            "product: the product is inactive; activate it first (or create the price inactive).",
            code="product_inactive",
            param="product",
        )
    currency = currency.lower()
    tax = tax_behavior or Price.TaxBehavior.UNSPECIFIED
    wanted = {
        "key": key,
        "product": product.pk,
        "currency": currency,
        "unit_amount": unit_amount,
        "type": terms.type,
        "interval": terms.interval,
        "interval_count": terms.interval_count,
        "trial_days": terms.trial_days,
        "usage_type": terms.usage_type,
        "meter": terms.meter_key,
        "tax_behavior": tax,
        "active": active,
        "stripe_price_id": "",
    }
    existing = price_list(project=project).filter(key=key).first()
    if existing is not None:
        if _price_snapshot(existing) != wanted or existing.stripe_price_history:
            raise Conflict(f"A price with key {key!r} already exists.", code="key_taken", param="key")
        return price_stripe_sync(price=existing)
    price = Price(
        project=project,
        key=key,
        product=product,
        currency=currency,
        unit_amount=unit_amount,
        type=terms.type,
        interval=terms.interval,
        interval_count=terms.interval_count,
        trial_days=terms.trial_days,
        usage_type=terms.usage_type,
        meter=meter_feature if terms.meter_key else None,
        tax_behavior=tax,
        active=active,
    )
    try:
        with transaction.atomic():
            price.save(force_insert=True)
            audit_record(
                actor=actor,
                action="price.created",
                target=price,
                project=project,
                after=_price_snapshot(price),
            )
    except IntegrityError as exc:
        raise Conflict(f"A price with key {key!r} already exists.", code="key_taken", param="key") from exc
    return price_stripe_sync(price=price)


# Fields a price keeps for life (they define what is sold; Stripe keeps them too): create another price instead.
PRICE_IMMUTABLE_FIELDS = ("key", "product", "type", "interval", "interval_count", "usage_type", "meter")
# Fields Stripe keeps for life but we may change: the change creates a new Stripe price.
PRICE_REPRICING_FIELDS = ("currency", "unit_amount", "tax_behavior")


def price_update(
    *,
    actor: Actor,
    price: Price,
    key: str | None = None,
    product: Product | None = None,
    currency: str | None = None,
    unit_amount: int | None = None,
    type: str | None = None,
    interval: str | None = _UNSET,
    interval_count: int | None = None,
    trial_days: int | None = _UNSET,
    usage_type: str | None = None,
    meter: str | None = _UNSET,
    tax_behavior: str | None = None,
    active: bool | None = None,
) -> Price:
    """Changes a price. A new amount, currency or tax behaviour creates a new Stripe price that takes over the
    lookup key; existing subscribers keep the old one. `active=False` archives the Stripe price.

    The terms that define what is sold (product, type, interval, usage type, meter) and the key are fixed:
    repeating their current value is accepted, another value is refused (create a new price instead).
    """
    current = _price_snapshot(price)
    given: dict[str, Any] = {}
    if key is not None:
        given["key"] = key
    if product is not None:
        given["product"] = product.pk
    if type is not None:
        given["type"] = type
    if interval is not _UNSET:
        given["interval"] = interval or ""
    if interval_count is not None:
        given["interval_count"] = interval_count
    if usage_type is not None:
        given["usage_type"] = usage_type
    if meter is not _UNSET:
        given["meter"] = meter or None
    for name, value in given.items():
        if value != current[name]:
            raise InvalidRequest(
                f"{name}: a price's {name} cannot be changed; create a new price instead.",
                code="immutable_field",
                param=name,
            )
    if trial_days is not _UNSET and trial_days is not None and price.type != Price.Type.RECURRING:
        raise InvalidRequest(
            "trial_days: a one_time price takes no trial_days.", code="invalid_parameter", param="trial_days"
        )
    with transaction.atomic():
        locked = Price.objects.select_for_update().get(pk=price.pk)
        locked = _price_fetch(locked.pk)
        before = _price_snapshot(locked)
        if active and not locked.active and not locked.product.active:
            raise Conflict(
                "active: the price's product is inactive; activate the product first.",
                code="product_inactive",
                param="active",
            )
        if currency is not None:
            locked.currency = currency.lower()
        if unit_amount is not None:
            locked.unit_amount = unit_amount
        if tax_behavior is not None:
            locked.tax_behavior = tax_behavior
        if trial_days is not _UNSET:
            locked.trial_days = trial_days
        if active is not None:
            locked.active = active
        repriced = any(getattr(locked, name) != before[name] for name in PRICE_REPRICING_FIELDS)
        if repriced and locked.stripe_price_id:
            # Subscribers keep the old Stripe price; the next sync creates the new one (see module docstring).
            locked.stripe_price_history = [*locked.stripe_price_history, locked.stripe_price_id]
            locked.stripe_price_id = ""
        after = _price_snapshot(locked)
        if after != before:
            locked.save()
            action = "price.updated"
            if before["active"] != after["active"]:
                action = "price.reactivated" if locked.active else "price.deactivated"
            audit_record(
                actor=actor, action=action, target=locked, project=locked.project, before=before, after=after
            )
    return price_stripe_sync(price=locked)


def _price_stripe_metadata(price: Price) -> dict[str, str]:
    return {"tollgate_project": price.project_id, "tollgate_price": price.pk}


def price_stripe_differs(price: Price, stripe_price: dict[str, Any]) -> bool:
    metadata = stripe_price.get("metadata") or {}
    return (
        stripe_price.get("active") != price.active
        or stripe_price.get("lookup_key") != price_lookup_key(price)
        or any(metadata.get(k) != v for k, v in _price_stripe_metadata(price).items())
    )


def _price_stripe_create(gateway: StripeGateway, price: Price, meter_id: str) -> dict[str, Any]:
    lookup_key = price_lookup_key(price)
    transfer = False
    for holder in gateway.prices_by_lookup_key(lookup_key):
        ours = (holder.get("metadata") or {}).get("tollgate_price") == price.pk
        if (
            ours
            and holder["id"] not in price.stripe_price_history
            and holder.get("currency") == price.currency
            and holder.get("unit_amount") == price.unit_amount
            and holder.get("tax_behavior") == price.tax_behavior
        ):
            return holder  # an earlier attempt created it and its answer was lost
        transfer = transfer or ours
    params: dict[str, Any] = {
        "product": price.product.stripe_product_id,
        "currency": price.currency,
        "unit_amount": price.unit_amount,
        "lookup_key": lookup_key,
        "nickname": price.key,
        "tax_behavior": price.tax_behavior,
        "active": price.active,
        "metadata": _price_stripe_metadata(price),
    }
    if price.type == Price.Type.RECURRING:
        recurring: dict[str, Any] = {
            "interval": price.interval,
            "interval_count": price.interval_count,
            "usage_type": price.usage_type,
        }
        if price.usage_type == Price.UsageType.METERED:
            recurring["meter"] = meter_id
        params["recurring"] = recurring
    if transfer:
        params["transfer_lookup_key"] = True  # take the key over from our previous Stripe price
    version = str(len(price.stripe_price_history))
    return gateway.price_create(params=params, idem=_idem("price", price.pk, f"create-{version}", params))


def price_stripe_sync(*, price: Price) -> Price:
    """Creates the price's current Stripe price when it has none (product and meter first), else pushes what
    may change at Stripe (active, lookup key, metadata). Never inside a transaction."""
    price = _price_fetch(price.pk)
    gateway = gateway_for(price.project)
    if not price.stripe_price_id:
        product = price.product
        if not product.stripe_product_id:
            product = product_stripe_sync(product=product)
            price.product = product
        meter_id = ""
        if price.usage_type == Price.UsageType.METERED and price.meter is not None:
            meter_id = feature_meter_ensure(feature=price.meter).stripe_meter_id
        stripe_price = _price_stripe_create(gateway, price, meter_id)
        if stripe_price.get("active") != price.active:
            gateway.price_update(stripe_price["id"], {"active": price.active})
        # Compare-and-set: if the price was repriced meanwhile, that request creates its own Stripe price.
        Price.objects.filter(
            pk=price.pk,
            stripe_price_id="",
            currency=price.currency,
            unit_amount=price.unit_amount,
            tax_behavior=price.tax_behavior,
        ).update(stripe_price_id=stripe_price["id"])
        return _price_fetch(price.pk)
    gateway.price_update(
        price.stripe_price_id,
        {
            "active": price.active,
            "lookup_key": price_lookup_key(price),
            "transfer_lookup_key": True,
            "metadata": _price_stripe_metadata(price),
        },
    )
    return price


# --- sync_catalog: a declarative catalog, planned then applied through the services above -----------------------


@dataclass(frozen=True)
class FeatureSpec:
    key: str
    name: str
    type: str
    unit: str = ""


@dataclass(frozen=True)
class PriceSpec:
    key: str
    currency: str
    unit_amount: int
    type: str
    interval: str | None = None
    interval_count: int | None = None
    trial_days: int | None = None
    usage_type: str | None = None
    meter: str | None = None
    tax_behavior: str | None = None
    active: bool = True


@dataclass(frozen=True)
class ProductSpec:
    key: str
    name: str
    description: str = ""
    active: bool = True
    features: dict[str, Any] = field(default_factory=dict)
    prices: tuple[PriceSpec, ...] = ()
    access_days: int | None = None


@dataclass(frozen=True)
class CatalogSpec:
    features: tuple[FeatureSpec, ...] = ()
    products: tuple[ProductSpec, ...] = ()
    default_product: str | None = None


@dataclass(frozen=True)
class CatalogChange:
    """One step of a plan: `action` is create, update, sync (Stripe only) or archive."""

    action: str
    kind: str
    key: str
    changes: dict[str, Any] = field(default_factory=dict)
    spec: Any = None
    product_key: str = ""
    note: str = ""

    def line(self) -> str:
        details = [
            f"{name}: {_show(old)} → {_show(new)}" for name, (old, new) in sorted(self.changes.items())
        ]
        if self.note:
            details.append(self.note)
        suffix = f" ({'; '.join(details)})" if details else ""
        return f"{self.action} {self.kind} {self.key}{suffix}"


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _dupes(keys: list[str]) -> str | None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    return None


def catalog_plan(
    *, project: Project, spec: CatalogSpec, archive_missing: bool = False
) -> list[CatalogChange]:
    """What applying `spec` would change, locally and at Stripe. Validates the whole file first (raising
    InvalidRequest with a `param` path into it) and writes nothing; Stripe is only read, to find drift."""
    for label, keys in (
        ("features", [f.key for f in spec.features]),
        ("products", [p.key for p in spec.products]),
        ("prices", [pr.key for p in spec.products for pr in p.prices]),
    ):
        duplicate = _dupes(keys)
        if duplicate is not None:
            raise InvalidRequest(f"{label}: {duplicate!r} is declared twice.", param=label)

    plan: list[CatalogChange] = []
    existing_features = {f.key: f for f in feature_list(project=project)}
    feature_types = {key: f.type for key, f in existing_features.items()}
    for index, fspec in enumerate(spec.features):
        feature_types[fspec.key] = fspec.type
        current = existing_features.get(fspec.key)
        if current is None:
            plan.append(CatalogChange("create", "feature", fspec.key, spec=fspec))
            continue
        diff = {
            name: (getattr(current, name), getattr(fspec, name))
            for name in ("name", "type", "unit")
            if getattr(current, name) != getattr(fspec, name)
        }
        if "type" in diff and _feature_in_use(current):
            raise InvalidRequest(
                f"features[{index}].type: {fspec.key!r} is used by a product or price; its type cannot change.",
                code="feature_in_use",
                param=f"features[{index}].type",
            )
        if diff:
            plan.append(CatalogChange("update", "feature", fspec.key, changes=diff, spec=fspec))

    gateway = gateway_for(project)
    products = {p.key: p for p in product_list(project=project).prefetch_related("feature_values__feature")}
    prices = {p.key: p for p in price_list(project=project)}
    for p_index, pspec in enumerate(spec.products):
        wanted_features: dict[str, Any] = {}
        for fkey in sorted(pspec.features):
            param = f"products[{p_index}].features.{fkey}"
            if fkey not in feature_types:
                raise InvalidRequest(f"{param}: no such feature.", code="unknown_feature", param=param)
            value, per_unit = feature_value_parse(
                feature_type=feature_types[fkey], value=pspec.features[fkey], param=param
            )
            wanted_features[fkey] = {"per_unit": value} if per_unit else value
        product = products.get(pspec.key)
        if product is None:
            plan.append(CatalogChange("create", "product", pspec.key, spec=pspec))
        else:
            current_state = _product_snapshot(product)
            wanted_state = {
                "key": pspec.key,
                "name": pspec.name,
                "description": pspec.description,
                "active": pspec.active,
                "features": wanted_features,
                "access_days": pspec.access_days,
            }
            diff = {
                name: (current_state[name], wanted_state[name])
                for name in ("name", "description", "active", "features", "access_days")
                if current_state[name] != wanted_state[name]
            }
            if diff:
                plan.append(CatalogChange("update", "product", pspec.key, changes=diff, spec=pspec))
            elif not product.stripe_product_id:
                plan.append(CatalogChange("sync", "product", pspec.key, note="not yet at Stripe"))
            elif product_stripe_differs(product, gateway.product_retrieve(product.stripe_product_id)):
                plan.append(CatalogChange("sync", "product", pspec.key, note="Stripe differs"))

        for r_index, rspec in enumerate(pspec.prices):
            prefix = f"products[{p_index}].prices[{r_index}]"
            try:
                terms = price_terms_check(
                    type=rspec.type,
                    interval=rspec.interval,
                    interval_count=rspec.interval_count,
                    trial_days=rspec.trial_days,
                    usage_type=rspec.usage_type,
                    meter_key=rspec.meter,
                    meter_type=feature_types.get(rspec.meter or ""),
                )
            except InvalidRequest as exc:
                exc.param = f"{prefix}.{exc.param}"
                exc.message = f"{prefix}.{exc.message}"
                raise
            # A price of an inactive product is inactive, whatever the file says of the price itself.
            wanted_price = {
                "product": pspec.key,
                "currency": rspec.currency.lower(),
                "unit_amount": rspec.unit_amount,
                "type": terms.type,
                "interval": terms.interval,
                "interval_count": terms.interval_count,
                "trial_days": terms.trial_days,
                "usage_type": terms.usage_type,
                "meter": terms.meter_key,
                "tax_behavior": rspec.tax_behavior or Price.TaxBehavior.UNSPECIFIED,
                "active": rspec.active and pspec.active,
            }
            price = prices.get(rspec.key)
            if price is None:
                plan.append(
                    CatalogChange("create", "price", rspec.key, spec=wanted_price, product_key=pspec.key)
                )
                continue
            current_price = {**_price_snapshot(price), "product": price.product.key}
            for name in PRICE_IMMUTABLE_FIELDS:
                if name != "key" and current_price[name] != wanted_price[name]:
                    raise InvalidRequest(
                        f"{prefix}.{name}: the {name} of price {rspec.key!r} cannot change "
                        f"({_show(current_price[name])} → {_show(wanted_price[name])}); use a new price key.",
                        code="immutable_field",
                        param=f"{prefix}.{name}",
                    )
            diff = {
                name: (current_price[name], wanted_price[name])
                for name in (*PRICE_REPRICING_FIELDS, "trial_days", "active")
                if current_price[name] != wanted_price[name]
            }
            if diff:
                repriced = any(name in diff for name in PRICE_REPRICING_FIELDS)
                plan.append(
                    CatalogChange(
                        "update",
                        "price",
                        rspec.key,
                        changes=diff,
                        spec=wanted_price,
                        product_key=pspec.key,
                        note="new Stripe price" if repriced else "",
                    )
                )
            elif not price.stripe_price_id:
                plan.append(CatalogChange("sync", "price", rspec.key, note="not yet at Stripe"))
            elif price_stripe_differs(price, gateway.price_retrieve(price.stripe_price_id)):
                plan.append(CatalogChange("sync", "price", rspec.key, note="Stripe differs"))

    if archive_missing:
        declared_products = {p.key for p in spec.products}
        declared_prices = {pr.key for p in spec.products for pr in p.prices}
        for key, product in sorted(products.items()):
            if key not in declared_products and product.active:
                active_prices = sum(1 for p in prices.values() if p.product_id == product.pk and p.active)
                note = f"and its {active_prices} active price(s)" if active_prices else ""
                plan.append(CatalogChange("archive", "product", key, note=note))
        for key, price in sorted(prices.items()):
            if key not in declared_prices and price.active and price.product.key in declared_products:
                plan.append(CatalogChange("archive", "price", key))

    if spec.default_product is not None and spec.default_product != project.default_product:
        if spec.default_product and spec.default_product not in {p.key for p in spec.products} | set(
            products
        ):
            raise InvalidRequest(
                f"default_product: no product {spec.default_product!r}.", param="default_product"
            )
        plan.append(
            CatalogChange(
                "update",
                "project",
                project.slug,
                changes={"default_product": (project.default_product, spec.default_product)},
            )
        )
    return plan


def catalog_apply(
    *,
    project: Project,
    actor: Actor,
    plan: list[CatalogChange],
    on_applied: Callable[[CatalogChange], None] | None = None,
) -> list[CatalogChange]:
    """Applies a plan from `catalog_plan` through the catalog services, in order; returns the applied steps.

    A failure (e.g. Stripe unreachable) stops it; what was applied stays applied, and running the sync again
    plans and completes the rest (every step is idempotent)."""
    from projects.services import project_update  # the project's default product is a project setting

    applied: list[CatalogChange] = []
    for change in plan:
        if change.kind == "feature":
            fspec: FeatureSpec = change.spec
            if change.action == "create":
                feature_create(
                    project=project,
                    actor=actor,
                    key=fspec.key,
                    name=fspec.name,
                    type=fspec.type,
                    unit=fspec.unit,
                )
            else:
                feature_update(
                    actor=actor,
                    feature=feature_get(project=project, key_or_id=change.key),
                    name=fspec.name,
                    type=fspec.type,
                    unit=fspec.unit,
                )
        elif change.kind == "product":
            if change.action == "create":
                pspec: ProductSpec = change.spec
                product_create(
                    project=project,
                    actor=actor,
                    key=pspec.key,
                    name=pspec.name,
                    description=pspec.description,
                    active=pspec.active,
                    features=pspec.features,
                    access_days=pspec.access_days,
                )
            else:
                product = _product_by_key(project, change.key)
                if change.action == "update":
                    pspec = change.spec
                    product_update(
                        actor=actor,
                        product=product,
                        name=pspec.name,
                        description=pspec.description,
                        active=pspec.active,
                        features=pspec.features,
                        access_days=pspec.access_days,
                    )
                elif change.action == "archive":
                    product_update(actor=actor, product=product, active=False)
                else:
                    product_stripe_sync(product=product)
        elif change.kind == "price":
            if change.action == "create":
                wanted = dict(change.spec)
                product_key = wanted.pop("product")
                price_create(
                    project=project,
                    actor=actor,
                    key=change.key,
                    product=_product_by_key(project, product_key),
                    **wanted,
                )
            else:
                price = _price_by_key(project, change.key)
                if change.action == "update":
                    price_update(
                        actor=actor,
                        price=price,
                        **{name: change.spec[name] for name in change.changes},
                    )
                elif change.action == "archive":
                    price_update(actor=actor, price=price, active=False)
                else:
                    price_stripe_sync(price=price)
        elif change.kind == "project":
            project_update(
                actor=actor,
                project=project,
                reason="sync_catalog",
                default_product=change.changes["default_product"][1],
            )
        applied.append(change)
        if on_applied is not None:
            on_applied(change)
    return applied


def _product_by_key(project: Project, key: str) -> Product:
    product = product_list(project=project).filter(key=key).first()
    if product is None:
        raise NotFound(f"No such product: {key!r}.")
    return product


def _price_by_key(project: Project, key: str) -> Price:
    price = price_list(project=project).filter(key=key).first()
    if price is None:
        raise NotFound(f"No such price: {key!r}.")
    return price
