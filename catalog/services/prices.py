"""Price writes: create and update. The terms that define what is sold are fixed (`rules`); a new amount,
currency or tax behaviour gets a new Stripe price that takes over the lookup key (`stripe_sync`)."""

from typing import Any

from django.db import IntegrityError, transaction

from catalog.models import Feature, Price, Product
from catalog.public import public_plans_changed
from catalog.rules import PRICE_REPRICING_FIELDS, UNSET, price_amounts_check, price_terms_check, tiers_parse
from catalog.selectors import feature_list, price_fetch, price_list
from catalog.services.stripe_sync import meter_event_name_check, price_stripe_sync
from catalog.services.versions import (
    product_version_publish,
    version_price_add,
    version_stripe_prices_fill,
)
from catalog.snapshots import price_snapshot
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidRequest, NotFound
from projects.models import Project
from stripe_gateway.ownership import refuse_held_first_elsewhere


def _meter_type(project: Project, meter_key: str | None) -> tuple[Feature | None, str | None]:
    if not meter_key:
        return None, None
    feature = feature_list(project=project).filter(key=meter_key).first()
    return feature, (feature.type if feature else None)


def price_create(
    *,
    project: Project,
    actor: Actor,
    key: str,
    product: Product,
    currency: str,
    type: str,
    unit_amount: int | None = None,
    billing_scheme: str | None = None,
    tiers_mode: str | None = None,
    tiers: Any = None,
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
    # A copy of another project's Stripe product: 404 before the row is written (price_stripe_sync checks too).
    refuse_held_first_elsewhere(product, project=project, param="product")
    meter_feature, meter_type = _meter_type(project, meter)
    amounts = price_amounts_check(
        billing_scheme=billing_scheme, unit_amount=unit_amount, tiers_mode=tiers_mode, tiers=tiers
    )
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
        meter_event_name_check(meter_feature)  # refuse before writing rather than after
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
        "unit_amount": amounts.unit_amount,
        "billing_scheme": amounts.billing_scheme,
        "tiers_mode": amounts.tiers_mode,
        "tiers": amounts.tiers,
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
        if price_snapshot(existing) != wanted or existing.stripe_price_history:
            raise Conflict(f"A price with key {key!r} already exists.", code="key_taken", param="key")
        return _sold(price_stripe_sync(price=existing))
    price = Price(
        project=project,
        key=key,
        product=product,
        currency=currency,
        unit_amount=amounts.unit_amount,
        billing_scheme=amounts.billing_scheme,
        tiers_mode=amounts.tiers_mode,
        tiers=amounts.tiers,
        type=terms.type,
        interval=terms.interval,
        interval_count=terms.interval_count,
        trial_days=terms.trial_days,
        usage_type=terms.usage_type,
        meter=meter_feature if terms.meter_key else None,
        tax_behavior=tax,
        active=active,
    )
    price_insert(price=price, actor=actor, action="price.created")
    return _sold(price_stripe_sync(price=price))


def _sold(price: Price) -> Price:
    """A new price's Stripe price, once Stripe made it, in the version that sells it (`version_price_add`)."""
    version_stripe_prices_fill(
        price.product_id, Product.objects.values_list("version", flat=True).get(pk=price.product_id)
    )
    return price


def price_update(
    *,
    actor: Actor,
    price: Price,
    key: str | None = None,
    product: Product | None = None,
    currency: str | None = None,
    unit_amount: int | None = None,
    billing_scheme: str | None = None,
    tiers_mode: str | None = None,
    tiers: Any = None,
    type: str | None = None,
    interval: str | None = UNSET,
    interval_count: int | None = None,
    trial_days: int | None = UNSET,
    usage_type: str | None = None,
    meter: str | None = UNSET,
    tax_behavior: str | None = None,
    active: bool | None = None,
    publish: bool = True,
) -> Price:
    """Changes a price. A new amount, currency or tax behaviour creates a new Stripe price that takes over the
    lookup key; existing subscribers keep the old one. `active=False` archives the Stripe price.

    New terms for an active price publish the product's next version with them (`publish`; `sync_catalog`
    publishes one version for a file's changes instead): new checkouts are sold the version, existing subscribers
    keep the one they bought, whose prices keep the terms and the Stripe price they were sold at.

    The terms that define what is sold (product, type, interval, usage type, meter) and the key are fixed:
    repeating their current value is accepted, another value is refused (create a new price instead).
    """
    # A copy of another project's Stripe price or product: 404 before the row is written (as price_stripe_sync).
    refuse_held_first_elsewhere(price, project=price.project)
    refuse_held_first_elsewhere(price.product, project=price.project, param="product")
    current = price_snapshot(price)
    given: dict[str, Any] = {}
    if key is not None:
        given["key"] = key
    if product is not None:
        given["product"] = product.pk
    if type is not None:
        given["type"] = type
    if interval is not UNSET:
        given["interval"] = interval or ""
    if interval_count is not None:
        given["interval_count"] = interval_count
    if usage_type is not None:
        given["usage_type"] = usage_type
    if meter is not UNSET:
        given["meter"] = meter or None
    if billing_scheme is not None:
        given["billing_scheme"] = billing_scheme
    if tiers_mode is not None:
        given["tiers_mode"] = tiers_mode
    for name, value in given.items():
        if value != current[name]:
            raise InvalidRequest(
                f"{name}: a price's {name} cannot be changed; create a new price instead.",
                code="immutable_field",
                param=name,
            )
    tiered = price.billing_scheme == Price.BillingScheme.TIERED
    if unit_amount is not None and tiered:
        raise InvalidRequest(
            "unit_amount: a tiered price has no unit_amount; change its tiers instead.",
            code="invalid_parameter",
            param="unit_amount",
        )
    if tiers is not None and not tiered:
        raise InvalidRequest(
            'tiers: only a tiered price (billing_scheme "tiered") takes tiers.',
            code="invalid_parameter",
            param="tiers",
        )
    new_tiers = tiers_parse(tiers) if tiers is not None else None
    if trial_days is not UNSET and trial_days is not None and price.type != Price.Type.RECURRING:
        raise InvalidRequest(
            "trial_days: a one_time price takes no trial_days.", code="invalid_parameter", param="trial_days"
        )
    published: int | None = None
    with transaction.atomic():
        # The product first, as a publish locks it before its prices.
        product_locked = Product.objects.select_for_update().get(pk=price.product_id)
        locked = Price.objects.select_for_update().get(pk=price.pk)
        locked = price_fetch(locked.pk)
        before = price_snapshot(locked)
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
        if new_tiers is not None:
            locked.tiers = new_tiers
        if tax_behavior is not None:
            locked.tax_behavior = tax_behavior
        if trial_days is not UNSET:
            locked.trial_days = trial_days
        if active is not None:
            locked.active = active
        _stripe_price_retire(locked, before)
        after = price_snapshot(locked)
        if after != before:
            locked.save()
            public_plans_changed(project=locked.project)
            repriced = any(after[name] != before[name] for name in PRICE_REPRICING_FIELDS)
            if publish and repriced and locked.active and product_locked.version:
                published = product_version_publish(
                    product_locked, note=f"price {locked.key} repriced"
                ).number
            action = "price.updated"
            if before["active"] != after["active"]:
                action = "price.reactivated" if locked.active else "price.deactivated"
            audit_record(
                actor=actor,
                action=action,
                target=locked,
                project=locked.project,
                before=before,
                after=after,
                reason=f"version {published} of {product_locked.key} published" if published else "",
            )
    synced = price_stripe_sync(price=locked)
    if publish and product_locked.version:
        # A retry after Stripe failed fills what the first attempt could not.
        version_stripe_prices_fill(product_locked.pk, published or product_locked.version)
    return synced


def _stripe_price_retire(price: Price, before: dict[str, Any]) -> None:
    """A price given a new amount, currency or tax behaviour leaves its Stripe price to the subscribers on it;
    the next sync creates the new one (see `stripe_sync`)."""
    repriced = any(getattr(price, name) != before[name] for name in PRICE_REPRICING_FIELDS)
    if repriced and price.stripe_price_id:
        price.stripe_price_history = [*price.stripe_price_history, price.stripe_price_id]
        price.stripe_price_id = ""


def price_terms_apply(
    *, actor: Actor, product: Product, key: str, terms: dict[str, Any], reason: str
) -> Price | None:
    """Gives a price new terms for a version the caller publishes — a draft's (`{"unit_amount": n}` or
    `{"tiers": [...]}`, checked by `drafts.draft_prices_normalized`) or a catalog file's (any of
    PRICE_REPRICING_FIELDS, checked by `sync.catalog_plan`) — in the caller's transaction: the row locked, its
    Stripe price left to its subscribers, audited with `reason`. The caller syncs it to Stripe after commit.
    Returns the price when it changed, None when it already had these terms (a retried publish)."""
    locked = Price.objects.select_for_update().get(product=product, key=key)
    before = price_snapshot(locked)
    for name in PRICE_REPRICING_FIELDS:
        if name in terms:
            setattr(locked, name, terms[name])
    _stripe_price_retire(locked, before)
    after = price_snapshot(locked)
    if after == before:
        return None
    locked.save()
    audit_record(
        actor=actor,
        action="price.updated",
        target=locked,
        project=locked.project,
        reason=reason,
        before=before,
        after=after,
    )
    return locked


def price_insert(*, price: Price, actor: Actor, action: str) -> None:
    """Inserts a new price with its audit row, the public plans' bump and its place in the latest version, in one
    transaction; a taken key is 409 `key_taken`."""
    try:
        with transaction.atomic():
            price.save(force_insert=True)
            version_price_add(price)
            public_plans_changed(project=price.project)
            audit_record(
                actor=actor, action=action, target=price, project=price.project, after=price_snapshot(price)
            )
    except IntegrityError as exc:
        raise Conflict(
            f"A price with key {price.key!r} already exists.", code="key_taken", param="key"
        ) from exc
