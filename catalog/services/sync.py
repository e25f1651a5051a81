"""The engine of `manage.py sync_catalog`: a declarative catalog (`CatalogSpec`) is planned against the project
and its Stripe objects (`catalog_plan`, which writes nothing), then applied step by step through the catalog
services (`catalog_apply`), so a file and the API obey the same rules."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from catalog.models import Feature, Price, Product
from catalog.rules import (
    PRICE_IMMUTABLE_FIELDS,
    PRICE_REPRICING_FIELDS,
    account_cap_parse,
    feature_value_parse,
    price_amounts_check,
    price_terms_check,
)
from catalog.selectors import feature_get, feature_list, price_list, product_list
from catalog.services.features import feature_create, feature_in_use, feature_update
from catalog.services.prices import price_create, price_update
from catalog.services.products import product_create, product_update
from catalog.services.stripe_sync import (
    price_stripe_differs,
    price_stripe_sync,
    product_stripe_differs,
    product_stripe_sync,
)
from catalog.services.versions import version_stripe_prices_fill
from catalog.snapshots import price_snapshot, product_snapshot
from core.actors import Actor
from core.errors import InvalidRequest, NotFound
from projects.models import Project
from stripe_gateway.gateway import gateway_for


@dataclass(frozen=True)
class FeatureSpec:
    key: str
    name: str
    type: str
    unit: str = ""
    usage_formula: dict[str, Any] | None = None  # normalized (`catalog.formulas.formula_parse`)


@dataclass(frozen=True)
class PriceSpec:
    key: str
    currency: str
    type: str
    unit_amount: int | None = None
    billing_scheme: str | None = None
    tiers_mode: str | None = None
    tiers: list[dict[str, Any]] | None = None
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
    public: bool = False
    features: dict[str, Any] = field(default_factory=dict)
    prices: tuple[PriceSpec, ...] = ()
    access_days: int | None = None
    account_cap: dict[str, Any] | None = None
    # The version the file's feature values are (None: whatever the product is at): a product at another
    # version, or one the file would change into another, is refused rather than overwritten.
    version: int | None = None


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
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)  # a product's: new terms by price key

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


def _version_check(pspec: ProductSpec, index: int, *, current: int | None, publishes: bool) -> None:
    """A file naming a product's version must name the one it is or will publish: the product's version when
    the file gives and charges what it does, the next one when it changes its feature values or account cap or
    reprices its active prices (1 for a new product). Anything else means the file was written against another version:
    400 `version_mismatch`, nothing applied."""
    if pspec.version is None:
        return
    expected = 1 if current is None else current + (1 if publishes else 0)
    if pspec.version != expected:
        at = "does not exist yet" if current is None else f"is at version {current}"
        would = (
            f"; the file's feature values, account cap and prices would publish version {expected}"
            if publishes
            else ""
        )
        raise InvalidRequest(
            f"products[{index}].version: the file declares version {pspec.version}, but {pspec.key!r} {at}"
            f"{would}. Update the file from the product's versions first.",
            code="version_mismatch",
            param=f"products[{index}].version",
        )


def _reprices_step(
    plan: list[CatalogChange],
    at: int,
    pspec: ProductSpec,
    reprices: dict[str, dict[str, Any]],
    *,
    version: int,
) -> None:
    """The product's step (an update, made when the file changes nothing else of it) carries its prices' new
    terms, so one version publishes the file's feature values and prices together, before the price steps."""
    existing = plan[at] if at < len(plan) and plan[at].kind == "product" else None
    step = CatalogChange(
        "update",
        "product",
        pspec.key,
        changes=existing.changes if existing is not None and existing.action == "update" else {},
        spec=pspec,
        note=f"version {version}: {', '.join(sorted(reprices))} repriced",
        prices=reprices,
    )
    if existing is not None:
        plan[at] = step  # its "update" step, or its "sync" one: the update tells Stripe the whole product too
    else:
        plan.insert(at, step)


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
            for name in ("name", "type", "unit", "usage_formula")
            if getattr(current, name) != getattr(fspec, name)
        }
        if "type" in diff and feature_in_use(current):
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
            wanted_features[fkey] = feature_value_parse(
                feature_type=feature_types[fkey],
                value=pspec.features[fkey],
                param=param,
                credit_features=[key for key, kind in feature_types.items() if kind == Feature.Type.CREDITS],
                allocation_features=[
                    key for key, kind in feature_types.items() if kind == Feature.Type.ALLOCATION
                ],
            ).api()
        wanted_cap = (
            None
            if pspec.account_cap is None
            else account_cap_parse(pspec.account_cap, param=f"products[{p_index}].account_cap")
        )
        product = products.get(pspec.key)
        # Where this product's step is (or goes, when only its prices publish a version).
        product_at = len(plan)
        product_diff: dict[str, Any] = {}
        # Its active prices' new terms: they publish its next version.
        reprices: dict[str, dict[str, Any]] = {}
        if product is None:
            _version_check(pspec, p_index, current=None, publishes=True)
            plan.append(CatalogChange("create", "product", pspec.key, spec=pspec))
        else:
            current_state = product_snapshot(product)
            wanted_state = {
                "key": pspec.key,
                "name": pspec.name,
                "description": pspec.description,
                "active": pspec.active,
                "public": pspec.public,
                "features": wanted_features,
                "access_days": pspec.access_days,
                "account_cap": wanted_cap,
            }
            product_diff = {
                name: (current_state[name], wanted_state[name])
                for name in (
                    "name",
                    "description",
                    "active",
                    "public",
                    "features",
                    "access_days",
                    "account_cap",
                )
                if current_state[name] != wanted_state[name]
            }
            if product_diff:
                plan.append(CatalogChange("update", "product", pspec.key, changes=product_diff, spec=pspec))
            elif not product.stripe_product_id:
                plan.append(CatalogChange("sync", "product", pspec.key, note="not yet at Stripe"))
            elif product_stripe_differs(product, gateway.product_retrieve(product.stripe_product_id)):
                plan.append(CatalogChange("sync", "product", pspec.key, note="Stripe differs"))

        for r_index, rspec in enumerate(pspec.prices):
            prefix = f"products[{p_index}].prices[{r_index}]"
            try:
                amounts = price_amounts_check(
                    billing_scheme=rspec.billing_scheme,
                    unit_amount=rspec.unit_amount,
                    tiers_mode=rspec.tiers_mode,
                    tiers=rspec.tiers,
                )
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
                "tax_behavior": rspec.tax_behavior or Price.TaxBehavior.UNSPECIFIED,
                "active": rspec.active and pspec.active,
            }
            price = prices.get(rspec.key)
            if price is None:
                plan.append(
                    CatalogChange("create", "price", rspec.key, spec=wanted_price, product_key=pspec.key)
                )
                continue
            current_price = {**price_snapshot(price), "product": price.product.key}
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
                if repriced and price.active and wanted_price["active"]:
                    # New terms for a price on sale: the product's next version sells them (the product's
                    # step gives them, in that version); its subscribers keep the version they bought.
                    reprices[rspec.key] = {
                        name: wanted_price[name] for name in PRICE_REPRICING_FIELDS if name in diff
                    }
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
        if product is not None:
            _version_check(
                pspec,
                p_index,
                current=product.version,
                publishes="features" in product_diff or "account_cap" in product_diff or bool(reprices),
            )
            if reprices:
                _reprices_step(plan, product_at, pspec, reprices, version=product.version + 1)

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
    from projects.services.projects import (
        project_update,  # the project's default product is a project setting
    )

    applied: list[CatalogChange] = []
    repriced: dict[str, dict[str, Any]] = {}  # the prices' new terms the product steps gave, by price key
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
                    usage_formula=fspec.usage_formula,
                )
            else:
                feature_update(
                    actor=actor,
                    feature=feature_get(project=project, key_or_id=change.key),
                    name=fspec.name,
                    type=fspec.type,
                    unit=fspec.unit,
                    usage_formula=fspec.usage_formula,
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
                    public=pspec.public,
                    features=pspec.features,
                    access_days=pspec.access_days,
                    account_cap=pspec.account_cap,
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
                        public=pspec.public,
                        features=pspec.features,
                        access_days=pspec.access_days,
                        account_cap=pspec.account_cap,
                        prices=change.prices,
                    )
                    repriced.update(change.prices)
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
                    # New terms the product's step gave it, in its version (`_reprices_step`), are given.
                    given = repriced.get(change.key, {})
                    fields = {name: change.spec[name] for name in change.changes if name not in given}
                    if fields:
                        price_update(actor=actor, price=price, publish=False, **fields)
                elif change.action == "archive":
                    price_update(actor=actor, price=price, active=False)
                else:
                    price_stripe_sync(price=price)
                    # A run stopped before Stripe made a repriced price: its version gets the new Stripe price.
                    version_stripe_prices_fill(price.product_id, price.product.version)
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
