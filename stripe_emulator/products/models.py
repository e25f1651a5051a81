"""Products and prices: the catalog, with Stripe's rules — a price's amount, currency, product and
recurrence never change; a lookup key is unique per account unless transferred; a product with prices
cannot be deleted."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.account import BaseBackend
from stripe_emulator.core.errors import InvalidRequestError, ParameterInvalid, ResourceAlreadyExists
from stripe_emulator.core.params import in_range
from stripe_emulator.core.store import StripeObject, clone

# Stripe caps a price's billing period at three years.
MAX_INTERVAL_COUNT = {"day": 1095, "week": 156, "month": 36, "year": 3}


class ProductsBackend(BaseBackend):
    # -- products ------------------------------------------------------------------------------------------

    def product_create(
        self,
        *,
        name: str,
        product_id: str | None = None,
        active: bool = True,
        description: str | None = None,
        images: list[str] | None = None,
        marketing_features: list[dict[str, Any]] | None = None,
        metadata: dict[str, str] | None = None,
        package_dimensions: dict[str, Any] | None = None,
        shippable: bool | None = None,
        statement_descriptor: str | None = None,
        tax_code: str | None = None,
        unit_label: str | None = None,
        url: str | None = None,
        id_param: str = "id",
    ) -> StripeObject:
        if product_id is not None and self.store.find(product_id) is not None:
            raise ResourceAlreadyExists("Product already exists.", param=id_param)
        now = self.now()
        product: StripeObject = {
            "id": product_id or ids.id_for("product"),
            "object": "product",
            "active": active,
            "created": now,
            "default_price": None,
            "description": description,
            "images": images or [],
            "livemode": False,
            "marketing_features": marketing_features or [],
            "metadata": metadata or {},
            "name": name,
            "package_dimensions": package_dimensions,
            "shippable": shippable,
            "statement_descriptor": statement_descriptor,
            "tax_code": tax_code,
            "type": "service",
            "unit_label": unit_label,
            "updated": now,
            "url": url,
        }
        self.store.insert(product)
        self.emit("product.created", product)
        return product

    def product_require(self, product_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("product", product_id, param=param)

    def product_update(self, product_id: str, changes: dict[str, Any]) -> StripeObject:
        product = self.product_require(product_id)
        if changes.get("default_price") is not None:
            price = self.price_require(changes["default_price"], param="default_price")
            if price["product"] != product_id:
                raise InvalidRequestError(
                    f"The price `{price['id']}` does not belong to this product.", param="default_price"
                )
        before = clone(product)
        product.update(changes)
        if product != before:
            product["updated"] = self.now()
        self.emit_update("product.updated", product, before)
        return product

    def product_delete(self, product_id: str) -> StripeObject:
        product = self.product_require(product_id)
        if any(p["product"] == product_id for p in self.store.iter_type("price")):
            raise InvalidRequestError(
                "This product cannot be deleted because it has one or more user-created prices.", param="id"
            )
        self.emit("product.deleted", product)
        self.store.remove(product_id)
        return {"id": product_id, "object": "product", "deleted": True}

    def product_features(self, product_id: str) -> list[StripeObject]:
        """The product's ``product_feature`` attachments, newest first. Entitlement features are not
        emulated, so no product has any; 404 for an unknown or deleted product."""
        self.product_require(product_id, param="product")
        return self.store.newest_first("product_feature", lambda f: f.get("_product") == product_id)

    def product_list(
        self,
        *,
        active: bool | None = None,
        ids_: list[str] | None = None,
        shippable: bool | None = None,
        url: str | None = None,
        created: dict[str, int] | None = None,
    ) -> list[StripeObject]:
        def keep(product: StripeObject) -> bool:
            return (
                (active is None or product["active"] == active)
                and (ids_ is None or product["id"] in ids_)
                and (shippable is None or product["shippable"] == shippable)
                and (url is None or product["url"] == url)
                and in_range(product["created"], created)
            )

        return self.store.newest_first("product", keep)

    # -- prices --------------------------------------------------------------------------------------------

    def price_create(
        self,
        *,
        currency: str,
        product_id: str | None = None,
        product_data: dict[str, Any] | None = None,
        unit_amount: int | None = None,
        unit_amount_decimal: str | None = None,
        recurring: dict[str, Any] | None = None,
        lookup_key: str | None = None,
        transfer_lookup_key: bool = False,
        tax_behavior: str | None = None,
        nickname: str | None = None,
        metadata: dict[str, str] | None = None,
        active: bool = True,
        transform_quantity: dict[str, Any] | None = None,
        billing_scheme: str = "per_unit",
        tiers_mode: str | None = None,
        tiers: list[dict[str, Any]] | None = None,
    ) -> StripeObject:
        """``tiers``: for ``billing_scheme="tiered"``, ``[{up_to: int | "inf", unit_amount?,
        unit_amount_decimal?, flat_amount?, flat_amount_decimal?}]`` as sent."""
        if billing_scheme == "tiered":
            amount, amount_decimal = None, None
            stored_tiers = _tiers(unit_amount, unit_amount_decimal, tiers_mode, tiers, transform_quantity)
        else:
            for param, value in (("tiers_mode", tiers_mode), ("tiers", tiers)):
                if value is not None:
                    raise InvalidRequestError(
                        f"You may only specify `{param}` when `billing_scheme` is `tiered`.", param=param
                    )
            amount, amount_decimal = _amounts(unit_amount, unit_amount_decimal)
            stored_tiers = None
        if recurring is not None:
            recurring = _validate_recurring(recurring)
            if recurring["meter"] is not None:  # a metered price must name one of this account's meters
                self.store.require("billing.meter", recurring["meter"], param="recurring[meter]")
        if product_id is None and product_data is None:
            raise InvalidRequestError(
                "Missing required param: product.", code="parameter_missing", param="product"
            )
        # Validate everything before the first mutation, so a refused request leaves no trace.
        product = self.product_require(product_id, param="product") if product_id is not None else None
        if lookup_key is not None:
            self._claim_lookup_key(lookup_key, transfer=transfer_lookup_key, check_only=True)
        if product is None:
            product = self.product_create(**(product_data or {}), id_param="product_data[id]")
        if lookup_key is not None:
            self._claim_lookup_key(lookup_key, transfer=transfer_lookup_key)
        price: StripeObject = {
            "id": ids.id_for("price"),
            "object": "price",
            "active": active,
            "billing_scheme": billing_scheme,
            "created": self.now(),
            "currency": currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": lookup_key,
            "metadata": metadata or {},
            "nickname": nickname,
            "product": product["id"],
            "recurring": recurring,
            "tax_behavior": tax_behavior or "unspecified",
            "tiers_mode": tiers_mode if billing_scheme == "tiered" else None,
            "transform_quantity": transform_quantity,
            "type": "recurring" if recurring is not None else "one_time",
            "unit_amount": amount,
            "unit_amount_decimal": amount_decimal,
            # Rendered only under ``expand[]=tiers``, as Stripe does (see ``include_tiers``).
            "_tiers": stored_tiers,
        }
        self.store.insert(price)
        self.emit("price.created", price)
        return price

    def price_require(self, price_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("price", price_id, param=param)

    def price_amount(self, price: StripeObject, quantity: int | Decimal) -> int:
        """What ``quantity`` units of ``price`` (the stored price or a rendered copy of it) cost."""
        stored = self.store.find(price["id"])
        return price_amount(price, quantity, stored.get("_tiers") if stored is not None else None)

    def price_update(
        self, price_id: str, changes: dict[str, Any], *, transfer_lookup_key: bool = False
    ) -> StripeObject:
        """``changes`` may hold ``active``, ``lookup_key``, ``metadata``, ``nickname``, ``tax_behavior``:
        everything else on a price is immutable (the wire layer rejects it as an unknown parameter)."""
        price = self.price_require(price_id)
        if "tax_behavior" in changes:
            current, wanted = price["tax_behavior"], changes["tax_behavior"]
            if current != "unspecified" and wanted != current:
                raise ParameterInvalid(
                    "The tax_behavior of a price cannot be changed once it is set to inclusive or exclusive.",
                    param="tax_behavior",
                )
        if changes.get("lookup_key") is not None and changes["lookup_key"] != price["lookup_key"]:
            self._claim_lookup_key(changes["lookup_key"], transfer=transfer_lookup_key)
        before = clone(price)
        price.update(changes)
        self.emit_update("price.updated", price, before)
        return price

    def price_list(
        self,
        *,
        active: bool | None = None,
        currency: str | None = None,
        product: str | None = None,
        type_: str | None = None,
        lookup_keys: list[str] | None = None,
        recurring: dict[str, str] | None = None,
        created: dict[str, int] | None = None,
    ) -> list[StripeObject]:
        def keep(price: StripeObject) -> bool:
            if recurring:
                rec = price["recurring"]
                if rec is None or any(rec.get(k) != v for k, v in recurring.items()):
                    return False
            return (
                (active is None or price["active"] == active)
                and (currency is None or price["currency"] == currency)
                and (product is None or price["product"] == product)
                and (type_ is None or price["type"] == type_)
                and (lookup_keys is None or price["lookup_key"] in lookup_keys)
                and in_range(price["created"], created)
            )

        return self.store.newest_first("price", keep)

    def price_by_lookup_key(self, lookup_key: str) -> StripeObject | None:
        # Inactive prices keep their lookup key, so they are searched too.
        for price in self.store.iter_type("price"):
            if price["lookup_key"] == lookup_key:
                return price
        return None

    def _claim_lookup_key(self, lookup_key: str, *, transfer: bool, check_only: bool = False) -> None:
        """Free ``lookup_key`` for a new holder: refuse if taken unless ``transfer``, in which case the old
        holder loses it (and says so with a ``price.updated`` event)."""
        holder = self.price_by_lookup_key(lookup_key)
        if holder is None:
            return
        if not transfer:
            raise InvalidRequestError(
                f"A price (`{holder['id']}`) already uses that lookup key.", param="lookup_key"
            )
        if check_only:
            return
        before = clone(holder)
        holder["lookup_key"] = None
        self.emit_update("price.updated", holder, before)


def is_metered(price: StripeObject) -> bool:
    """A metered price (`recurring[usage_type]=metered`): billed in arrears from its meter, bought without a
    quantity."""
    return bool(price.get("recurring") and price["recurring"].get("usage_type") == "metered")


def price_amount(price: StripeObject, quantity: int | Decimal, tiers: list[dict[str, Any]] | None) -> int:
    """What ``quantity`` units of ``price`` cost in minor units, rounded half up once at the end, as Stripe
    does. A per-unit price with ``transform_quantity``: the quantity divided by ``divide_by``, rounded ``up``
    or ``down`` to a whole number, is what is multiplied (25 units in packages of 10 rounded up: 3). A tiered
    price: graduated — each tier's units at its unit amount plus the flat amount of every tier the quantity
    reaches; volume — every unit at the tier the whole quantity falls in, plus its flat amount."""
    quantity = Decimal(quantity)
    transform = price.get("transform_quantity")
    if transform:
        rounding = ROUND_CEILING if transform["round"] == "up" else ROUND_FLOOR
        quantity = (quantity / Decimal(transform["divide_by"])).to_integral_value(rounding=rounding)
    if price["billing_scheme"] != "tiered":
        total = Decimal(str(price["unit_amount_decimal"])) * quantity
    else:
        tiers = tiers or []
        total = Decimal(0)
        if price["tiers_mode"] == "volume":
            tier = next(t for t in tiers if t["up_to"] is None or quantity <= t["up_to"])
            total = _tier_unit(tier) * quantity + _tier_flat(tier)
        else:
            below = Decimal(0)
            for tier in tiers:
                if quantity <= below:
                    break
                top = quantity if tier["up_to"] is None else min(quantity, Decimal(tier["up_to"]))
                total += _tier_unit(tier) * (top - below) + _tier_flat(tier)
                if tier["up_to"] is None:
                    break
                below = Decimal(tier["up_to"])
    return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _tier_unit(tier: dict[str, Any]) -> Decimal:
    return Decimal(tier["unit_amount_decimal"] or 0)


def _tier_flat(tier: dict[str, Any]) -> Decimal:
    return Decimal(tier["flat_amount_decimal"] or 0)


def _tiers(
    unit_amount: int | None,
    unit_amount_decimal: str | None,
    tiers_mode: str | None,
    tiers: list[dict[str, Any]] | None,
    transform_quantity: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """Stripe's checks on a tiered price; its tiers as Stripe renders them (``up_to`` null for "inf")."""
    if unit_amount is not None or unit_amount_decimal is not None:
        param = "unit_amount" if unit_amount is not None else "unit_amount_decimal"
        raise InvalidRequestError(
            f"You may not specify `{param}` when `billing_scheme` is `tiered`; set amounts on the tiers.",
            param=param,
        )
    if transform_quantity is not None:
        raise InvalidRequestError(
            "You may not specify `transform_quantity` when `billing_scheme` is `tiered`.",
            param="transform_quantity",
        )
    if tiers_mode is None:
        raise InvalidRequestError(
            "Missing required param: tiers_mode.", code="parameter_missing", param="tiers_mode"
        )
    if not tiers:
        raise InvalidRequestError("Missing required param: tiers.", code="parameter_missing", param="tiers")
    rendered: list[dict[str, Any]] = []
    previous = 0
    for index, tier in enumerate(tiers):
        up_to = tier.get("up_to")
        last = index == len(tiers) - 1
        if up_to == "inf":
            if not last:
                raise InvalidRequestError(
                    "Only the last tier may have `up_to` set to `inf`.", param=f"tiers[{index}][up_to]"
                )
        elif up_to is None:
            raise InvalidRequestError(
                f"Missing required param: tiers[{index}][up_to].",
                code="parameter_missing",
                param=f"tiers[{index}][up_to]",
            )
        elif last:
            raise InvalidRequestError(
                "The last tier must have `up_to` set to `inf`.", param=f"tiers[{index}][up_to]"
            )
        elif up_to <= previous:
            raise InvalidRequestError(
                "Tiers must be sorted in ascending order of `up_to`, each greater than the one before.",
                param=f"tiers[{index}][up_to]",
            )
        else:
            previous = up_to
        unit, unit_decimal = _tier_amount(tier, "unit_amount", index)
        flat, flat_decimal = _tier_amount(tier, "flat_amount", index)
        if unit_decimal is None and flat_decimal is None:
            raise InvalidRequestError(
                f"Each tier must have at least one of `unit_amount`, `unit_amount_decimal`, `flat_amount` "
                f"or `flat_amount_decimal` (tiers[{index}]).",
                param=f"tiers[{index}]",
            )
        rendered.append(
            {
                "flat_amount": flat,
                "flat_amount_decimal": flat_decimal,
                "unit_amount": unit,
                "unit_amount_decimal": unit_decimal,
                "up_to": None if up_to == "inf" else up_to,
            }
        )
    return rendered


def _tier_amount(tier: dict[str, Any], name: str, index: int) -> tuple[int | None, str | None]:
    whole, decimal = tier.get(name), tier.get(f"{name}_decimal")
    if whole is None and decimal is None:
        return None, None
    try:
        return _amounts(whole, decimal)
    except InvalidRequestError as exc:
        exc.param = f"tiers[{index}][{str(exc.param).replace('unit_amount', name)}]"
        raise


def _amounts(unit_amount: int | None, unit_amount_decimal: str | None) -> tuple[int | None, str]:
    if unit_amount is not None and unit_amount_decimal is not None:
        raise InvalidRequestError(
            "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
            param="unit_amount_decimal",
        )
    if unit_amount is not None:
        if unit_amount < 0:
            raise ParameterInvalid("Invalid non-negative integer", param="unit_amount")
        return unit_amount, str(unit_amount)
    if unit_amount_decimal is None:
        raise InvalidRequestError(
            "Missing required param: unit_amount.", code="parameter_missing", param="unit_amount"
        )
    try:
        decimal = Decimal(unit_amount_decimal)
    except InvalidOperation as exc:
        raise ParameterInvalid(
            f"Invalid decimal: {unit_amount_decimal}", param="unit_amount_decimal"
        ) from exc
    if decimal < 0 or not decimal.is_finite():
        raise ParameterInvalid(f"Invalid decimal: {unit_amount_decimal}", param="unit_amount_decimal")
    # ``unit_amount`` is only set when the decimal is a whole number of minor units.
    whole = int(decimal) if decimal == decimal.to_integral_value() else None
    return whole, format(decimal.normalize(), "f")


def _validate_recurring(recurring: dict[str, Any]) -> dict[str, Any]:
    interval, count = recurring["interval"], recurring.get("interval_count") or 1
    if count > MAX_INTERVAL_COUNT[interval]:
        raise ParameterInvalid(
            "The maximum billing period is three years; "
            f"interval_count must be at most {MAX_INTERVAL_COUNT[interval]} for interval={interval}.",
            param="recurring[interval_count]",
        )
    usage_type = recurring.get("usage_type") or "licensed"
    meter = recurring.get("meter")
    if usage_type == "metered" and not meter:
        # Since the 2025 "basil" versions a metered price must name the billing meter that feeds it.
        raise InvalidRequestError(
            "Missing required param: recurring[meter].", code="parameter_missing", param="recurring[meter]"
        )
    if usage_type != "metered" and meter:
        raise InvalidRequestError(
            "recurring[meter] can only be set when recurring[usage_type] is metered.",
            param="recurring[meter]",
        )
    return {
        "interval": interval,
        "interval_count": count,
        "meter": meter,
        "trial_period_days": recurring.get("trial_period_days"),
        "usage_type": usage_type,
    }
