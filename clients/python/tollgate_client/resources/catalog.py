"""The catalog: features, products (what each gives every feature) and prices."""

from __future__ import annotations

from typing import Any

from tollgate_client.pagination import Page
from tollgate_client.resources._base import Resource, compact, path
from tollgate_client.types import (
    Feature,
    Price,
    Product,
    ProductDraft,
    ProductVersion,
    PublicPlan,
    Rerating,
)


class Features(Resource):
    def create(
        self,
        *,
        key: str,
        name: str,
        type: str,
        unit: str | None = None,
        usage_formula: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Feature:
        """`type`: `boolean`, `metered`, `credits`, `allocation` or `static`. `usage_formula` (metered only): how
        usage events' `dimensions` become units (`{"type": "cost", "markup": "1.5", "unit_micros": 1000}` or
        `{"type": "rates", "rates": {...}, "models": {...}}`)."""
        body = compact(key=key, name=name, type=type, unit=unit, usage_formula=usage_formula)
        return self._post(Feature, "/features", body, idempotency_key=idempotency_key)

    def retrieve(self, feature: str) -> Feature:
        return self._get(Feature, path("/features/{}", feature))

    def update(
        self,
        feature: str,
        *,
        name: str | None = None,
        unit: str | None = None,
        usage_formula: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Feature:
        """A new `usage_formula` applies to usage events recorded from then on."""
        body = compact(name=name, unit=unit, usage_formula=usage_formula)
        return self._patch(Feature, path("/features/{}", feature), body, idempotency_key=idempotency_key)

    def list(
        self, *, type: str | None = None, limit: int | None = None, starting_after: str | None = None
    ) -> Page[Feature]:
        return self._list(
            Feature, "/features", {"type": type, "limit": limit, "starting_after": starting_after}
        )


_KEEP: Any = object()  # an argument not given: the field is left as it is


class Products(Resource):
    def create(
        self,
        *,
        key: str,
        name: str,
        description: str | None = None,
        active: bool | None = None,
        features: dict[str, Any] | None = None,
        public: bool | None = None,
        account_cap: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Product:
        """`features`: `{"<feature key>": true | limit | null (unlimited) | {"per_unit": n} | JSON value}`; a
        metered limit may allow overage: `{"limit": n, "overage": "allowed"}` (or with `per_unit`).
        `public=True` lists it (while active) in the pricing page's `plans.list`. `account_cap`: the plan's
        account cap, `{"amount": m, "currency": "usd", "at_cap": "block" | "alert"}`, for its customers without
        their own."""
        body = compact(
            key=key,
            name=name,
            description=description,
            active=active,
            features=features,
            public=public,
            account_cap=account_cap,
        )
        return self._post(Product, "/products", body, idempotency_key=idempotency_key)

    def retrieve(self, product: str) -> Product:
        """`product`: its key or id."""
        return self._get(Product, path("/products/{}", product))

    def update(
        self,
        product: str,
        *,
        name: str | None = None,
        description: str | None = None,
        active: bool | None = None,
        features: dict[str, Any] | None = None,
        public: bool | None = None,
        account_cap: Any = _KEEP,
        idempotency_key: str | None = None,
    ) -> Product:
        """`features` replaces the product's whole feature map; `account_cap` sets the plan's account cap (None
        removes it)."""
        body = compact(name=name, description=description, active=active, features=features, public=public)
        if account_cap is not _KEEP:
            body["account_cap"] = account_cap
        return self._patch(Product, path("/products/{}", product), body, idempotency_key=idempotency_key)

    def list(
        self, *, active: bool | None = None, limit: int | None = None, starting_after: str | None = None
    ) -> Page[Product]:
        params = {"active": active, "limit": limit, "starting_after": starting_after}
        return self._list(Product, "/products", params)

    def versions(self, product: str) -> Page[ProductVersion]:
        """Every published version of the product, oldest first, with what each changed of the one before
        (`changes`); the latest (`latest`, the product's `version`) is what new subscribers get. One page."""
        return self._list(ProductVersion, path("/products/{}/versions", product), {})

    def draft(self, product: str) -> ProductDraft:
        """The product's next version as drafted (`NotFoundError` `no_draft` without one)."""
        return self._get(ProductDraft, path("/products/{}/draft", product))

    def draft_save(
        self,
        product: str,
        *,
        features: dict[str, Any] | None = None,
        prices: dict[str, dict[str, Any]] | None = None,
        account_cap: Any = _KEEP,
        note: str | None = None,
        idempotency_key: str | None = None,
    ) -> ProductDraft:
        """Drafts the product's next version: `features` is the whole map (as `update` takes it; left out: the
        latest version's), `prices` new terms for some of its prices by price key (`{"unit_amount": n}` or
        `{"tiers": [...]}`), `account_cap` the version's account cap (None: none; left out: the latest
        version's), `note` why (shown with the published version). Replaces an earlier draft; nothing changes
        for any customer until `draft_publish`."""
        body = compact(features=features, prices=prices, note=note)
        if account_cap is not _KEEP:
            body["account_cap"] = account_cap
        return self._put(
            ProductDraft, path("/products/{}/draft", product), body, idempotency_key=idempotency_key
        )

    def draft_rerating(
        self,
        product: str,
        *,
        periods: int | None = None,
        version: int | None = None,
        limit: int | None = None,
    ) -> Rerating:
        """What the draft would have billed the product's subscribers over each one's last `periods` closed
        periods (default 3), against what Stripe invoiced them, with the entitlements it would take away or lower
        below their use; `version`: one cohort; `limit`: subscribers listed (default 100). Reads only."""
        params = compact(periods=periods, version=version, limit=limit)
        return self._get(Rerating, path("/products/{}/draft/rerating", product), params)

    def draft_discard(self, product: str, *, idempotency_key: str | None = None) -> None:
        """Throws the draft away (`NotFoundError` `no_draft` without one)."""
        self._delete(path("/products/{}/draft", product), idempotency_key=idempotency_key)

    def draft_publish(
        self, product: str, *, version: int | None = None, idempotency_key: str | None = None
    ) -> Product:
        """Makes the draft the product's latest version (existing subscribers keep theirs). `version`: the
        draft's `version`, so a retry after the publish went through answers the product. `ConflictError`
        `draft_stale` when a version was published since the draft was made (save it again)."""
        body = compact(version=version)
        return self._post(
            Product, path("/products/{}/draft/publish", product), body, idempotency_key=idempotency_key
        )


class Prices(Resource):
    def create(
        self,
        *,
        key: str,
        product: str,
        currency: str,
        unit_amount: int,
        type: str,
        interval: str | None = None,
        interval_count: int | None = None,
        trial_days: int | None = None,
        usage_type: str | None = None,
        meter: str | None = None,
        tax_behavior: str | None = None,
        active: bool | None = None,
        idempotency_key: str | None = None,
    ) -> Price:
        """`type`: `recurring` (needs `interval`) or `one_time`; `unit_amount` in minor units."""
        body = compact(
            key=key,
            product=product,
            currency=currency,
            unit_amount=unit_amount,
            type=type,
            interval=interval,
            interval_count=interval_count,
            trial_days=trial_days,
            usage_type=usage_type,
            meter=meter,
            tax_behavior=tax_behavior,
            active=active,
        )
        return self._post(Price, "/prices", body, idempotency_key=idempotency_key)

    def retrieve(self, price: str) -> Price:
        """`price`: its key or id."""
        return self._get(Price, path("/prices/{}", price))

    def update(
        self,
        price: str,
        *,
        unit_amount: int | None = None,
        currency: str | None = None,
        tax_behavior: str | None = None,
        trial_days: int | None = None,
        active: bool | None = None,
        idempotency_key: str | None = None,
    ) -> Price:
        """A new `unit_amount`, `currency` or `tax_behavior` creates a new Stripe price for new checkouts."""
        body = compact(
            unit_amount=unit_amount,
            currency=currency,
            tax_behavior=tax_behavior,
            trial_days=trial_days,
            active=active,
        )
        return self._patch(Price, path("/prices/{}", price), body, idempotency_key=idempotency_key)

    def list(
        self,
        *,
        active: bool | None = None,
        product: str | None = None,
        type: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> Page[Price]:
        params = {
            "active": active,
            "product": product,
            "type": type,
            "limit": limit,
            "starting_after": starting_after,
        }
        return self._list(Price, "/prices", params)


class Plans(Resource):
    def list(self, *, project: str) -> Page[PublicPlan]:
        """What a pricing page shows: the project's (by slug) active products marked `public`, cheapest first,
        with their active prices and feature values. The endpoint needs no key (the client's is ignored), so
        any project's public plans can be read; it is rate-limited per address and cached for 60 seconds."""
        return self._list(PublicPlan, path("/public/{}/plans", project), {})
