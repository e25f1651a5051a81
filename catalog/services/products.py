"""Product writes: create and update, with the feature values a product gives and how long a one-time purchase
grants them; deactivating a product deactivates its prices. Each write then tells Stripe (`stripe_sync`)."""

from typing import Any

from django.db import IntegrityError, transaction

from catalog.models import Feature, Price, Product, ProductAccess, ProductDraft, ProductFeature
from catalog.public import public_plans_changed
from catalog.rules import UNSET, FeatureValue, account_cap_parse, feature_value_parse
from catalog.selectors import feature_list, price_list, product_fetch, product_list
from catalog.services.prices import price_terms_apply
from catalog.services.stripe_sync import price_stripe_sync, product_stripe_sync
from catalog.services.versions import product_version_publish, version_stripe_prices_fill
from catalog.snapshots import price_snapshot, product_snapshot
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidRequest
from projects.models import Project
from projects.versions import project_version_bump
from stripe_gateway.ownership import refuse_held_first_elsewhere


def _features_resolve(
    *, project: Project, features: dict[str, Any]
) -> dict[str, tuple[Feature, FeatureValue]]:
    found = {f.key: f for f in feature_list(project=project).filter(key__in=list(features))}

    def keys_of(kind: str, part: str) -> list[str] | None:
        """The project's features of `kind` when some value names one in `part`, else None (nothing to check)."""
        named = any(isinstance(value, dict) and value.get(part) is not None for value in features.values())
        return (
            list(feature_list(project=project).filter(type=kind).values_list("key", flat=True))
            if named
            else None
        )

    credit_features = keys_of(Feature.Type.CREDITS, "credits")
    allocation_features = keys_of(Feature.Type.ALLOCATION, "per_entity")
    resolved: dict[str, tuple[Feature, FeatureValue]] = {}
    for key in sorted(features):
        param = f"features.{key}"
        feature = found.get(key)
        if feature is None:
            raise InvalidRequest(f"{param}: no such feature.", code="unknown_feature", param=param)
        resolved[key] = (
            feature,
            feature_value_parse(
                feature_type=feature.type,
                value=features[key],
                param=param,
                credit_features=credit_features,
                allocation_features=allocation_features,
            ),
        )
    return resolved


def _features_normalized(resolved: dict[str, tuple[Feature, FeatureValue]]) -> dict[str, Any]:
    return {key: value.api() for key, (_, value) in resolved.items()}


def features_normalized(*, project: Project, features: dict[str, Any]) -> dict[str, Any]:
    """A `features` map validated as a product write validates it (400s the same), in the shape it is stored."""
    return _features_normalized(_features_resolve(project=project, features=features))


def account_cap_normalized(given: dict[str, Any] | None) -> dict[str, Any] | None:
    """A product's account cap (`account_cap_parse`), None for none."""
    return None if given is None else account_cap_parse(given, param="account_cap")


def _product_access_set(product: Product, days: int | None) -> None:
    """Purchases recorded from now on last `days` (None: for life); earlier purchases keep their end."""
    if days is None:
        ProductAccess.objects.filter(product=product).delete()
    else:
        ProductAccess.objects.update_or_create(product=product, defaults={"duration_days": days})
    product._state.fields_cache.pop("access", None)  # the reverse one-to-one is cached on the instance


def _product_values_replace(product: Product, resolved: dict[str, tuple[Feature, FeatureValue]]) -> None:
    ProductFeature.objects.filter(product=product).exclude(
        feature__in=[feature for feature, _ in resolved.values()]
    ).delete()
    for feature, given in resolved.values():
        ProductFeature.objects.update_or_create(
            product=product,
            feature=feature,
            defaults={
                "value": given.value,
                "per_unit": given.per_unit,
                "overage": given.overage,
                "rollover": given.rollover,
                "cadence": given.cadence or "",
                "windows": given.windows,
                "cap": given.cap,
                "credits": given.credits,
                "per_entity": given.per_entity,
            },
        )
    # What the product gives changed for everyone holding it (or for everyone, if it is the default product).
    project_version_bump(project_id=product.project.pk)


def product_create(
    *,
    project: Project,
    actor: Actor,
    key: str,
    name: str,
    description: str | None = None,
    active: bool = True,
    public: bool = False,
    features: dict[str, Any] | None = None,
    access_days: int | None = None,
    account_cap: dict[str, Any] | None = None,
) -> Product:
    """Creates a product with its feature values (and, for one-time purchases, how many days they last), then
    its Stripe product.

    If a product with this key exists but was never synced to Stripe (an earlier attempt failed there) and the
    request matches it, this completes that attempt instead of refusing the key.
    """
    resolved = _features_resolve(project=project, features=features or {})
    account_cap = account_cap_normalized(account_cap)
    existing = product_list(project=project).filter(key=key).first()
    if existing is not None:
        existing = product_fetch(existing.pk)
        wanted = {
            "key": key,
            "name": name,
            "description": description or "",
            "active": active,
            "public": public,
            "features": _features_normalized(resolved),
            "access_days": access_days,
            "account_cap": account_cap,
        }
        if existing.stripe_product_id or product_snapshot(existing) != wanted:
            raise Conflict(f"A product with key {key!r} already exists.", code="key_taken", param="key")
        return product_stripe_sync(product=existing)
    product = Product(
        project=project,
        key=key,
        name=name,
        description=description or "",
        active=active,
        public=public,
        account_cap=account_cap,
    )
    try:
        with transaction.atomic():
            product.save(force_insert=True)
            public_plans_changed(project=project)
            _product_values_replace(product, resolved)
            _product_access_set(product, access_days)
            product_version_publish(product, first=True)
            audit_record(
                actor=actor,
                action="product.created",
                target=product,
                project=project,
                after=product_snapshot(product_fetch(product.pk)),
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
    public: bool | None = None,
    features: dict[str, Any] | None = None,
    access_days: int | None = UNSET,
    account_cap: dict[str, Any] | None = UNSET,
    draft: ProductDraft | None = None,
    prices: dict[str, dict[str, Any]] | None = None,
) -> Product:
    """Changes a product; `features` replaces the whole map and, when that (or `account_cap`) changes what the
    product gives, publishes it as the product's next version (`services.versions`: existing subscribers keep
    theirs), with
    `draft`'s note when it publishes that draft (checked, under the product's lock, to be still based on the
    latest version, and dropped). New terms for its prices (the draft's, or `prices` by price key from a catalog
    file) are given in the same version; `access_days` (None: for life) applies to purchases
    recorded from now on. Deactivating it archives it at Stripe and
    deactivates its prices (reactivating it leaves them inactive: reactivate the ones to sell again)."""
    if key is not None and key != product.key:
        raise InvalidRequest("key: a product's key cannot be changed.", code="immutable_field", param="key")
    # A copy of another project's Stripe product: 404 before the row is written (product_stripe_sync checks too).
    refuse_held_first_elsewhere(product, project=product.project)
    resolved = _features_resolve(project=product.project, features=features) if features is not None else None
    if account_cap is not UNSET:
        account_cap = account_cap_normalized(account_cap)
    with transaction.atomic():
        locked = Product.objects.select_for_update().get(pk=product.pk)
        locked = product_fetch(locked.pk)
        before = product_snapshot(locked)
        was_active = locked.active
        if (
            draft is not None
            and not ProductDraft.objects.filter(product=locked, based_on=locked.version).exists()
        ):
            raise Conflict(
                f"Version {locked.version} was published after this draft was made on version "
                f"{draft.based_on}: save the draft again on the latest version.",
                code="draft_stale",
            )
        repriced = [
            price
            for key, terms in sorted((draft.prices if draft is not None else prices or {}).items())
            if (
                price := price_terms_apply(
                    actor=actor,
                    product=locked,
                    key=key,
                    terms=terms,
                    reason=f"version {locked.version + 1} of {locked.key} published",
                )
            )
            is not None
        ]
        if draft is not None:
            if (
                not repriced
                and resolved is not None
                and _features_normalized(resolved) == before["features"]
                and (account_cap is UNSET or account_cap == before["account_cap"])
            ):
                raise InvalidRequest(
                    "The draft gives and charges what the latest version does: there is nothing to publish.",
                    code="draft_unchanged",
                )
            ProductDraft.objects.filter(product=locked).delete()
        for field_name, value in (
            ("name", name),
            ("description", description),
            ("active", active),
            ("public", public),
        ):
            if value is not None:
                setattr(locked, field_name, value)
        if resolved is not None:
            _product_values_replace(locked, resolved)
        if access_days is not UNSET:
            _product_access_set(locked, access_days)
        if account_cap is not UNSET:
            locked.account_cap = account_cap
        if was_active and not locked.active:
            for price in Price.objects.select_for_update().filter(product=locked, active=True).order_by("pk"):
                price_before = price_snapshot(price)
                price.active = False
                price.save(update_fields=["active", "updated_at"])
                audit_record(
                    actor=actor,
                    action="price.deactivated",
                    target=price,
                    project=locked.project,
                    reason="its product was deactivated",
                    before=price_before,
                    after=price_snapshot(price),
                )
        current = product_fetch(locked.pk)  # fresh feature values
        current.name, current.description = locked.name, locked.description
        current.active, current.public = locked.active, locked.public
        current.account_cap = locked.account_cap
        locked = current
        after = product_snapshot(locked)
        capped = after["account_cap"] != before["account_cap"]
        if after["features"] != before["features"] or repriced or capped:
            note = "; ".join(
                [f"price {price.key} repriced" for price in repriced]
                + (["account cap changed"] if capped else [])
            )
            published = product_version_publish(locked, note=draft.note if draft is not None else note)
            after["version"], before["version"] = published.number, published.number - 1
        if after != before:
            locked.save(
                update_fields=["name", "description", "active", "public", "account_cap", "updated_at"]
            )
            if capped:
                # Its customers' answers carry the plan's account cap.
                project_version_bump(project_id=locked.project.pk)
            public_plans_changed(project=locked.project)
            action = "product.updated"
            if was_active != locked.active:
                action = "product.deactivated" if was_active else "product.reactivated"
            audit_record(
                actor=actor, action=action, target=locked, project=locked.project, before=before, after=after
            )
    # Stripe is told the whole state every time, so a retry after a Stripe failure converges.
    locked = product_stripe_sync(product=locked)
    for price in repriced:  # a failure here leaves the price for the next sync (`stripe_sync`)
        price_stripe_sync(price=price)
    if repriced:
        version_stripe_prices_fill(locked.pk, locked.version)
    if active is False:
        for price in price_list(project=locked.project).filter(product=locked).exclude(stripe_price_id=""):
            price_stripe_sync(price=price)
    return locked
