"""The units a model call's `dimensions` make by a feature's usage formula, from a signed snapshot's
`usage_formula` and `cost_tables`: the server's integer arithmetic exactly (`catalog.formulas`, `costs.pricing`,
`entitlements.services.usage_pricing`), so a local answer is judged for the units the server would count.

A cost is Σ quantity × micros / per, exact; a `cost` formula's units are ⌈cost × markup / unit_micros⌉, from the
exact cost (rounded up once: never the cost rounded to a micro-unit first); a `rates` formula's are ⌈Σ quantity ×
rate⌉, a model named in its `models` taking its own rates. No float anywhere: every decimal is a `Fraction` of the
server's decimal string.

`units` answers None for whatever the server refuses or judges otherwise (no formula, a model nothing prices, a
dimension not priced, too many units, a malformed call): the caller asks the server, which answers or raises its
own error.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, NamedTuple

MAX_DIMENSIONS = 20
MAX_DIMENSION_QUANTITY = 10**12
MAX_UNITS = 10**12  # what the server lets one use come to (a usage event's quantity at most)
MAX_COST_MICROS = 2**63 - 1  # what a usage event's cost holds
MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}")

Ratio = tuple[int, int]


class Formula(NamedTuple):
    """A usage formula as `units` applies it, every decimal an exact (numerator, denominator)."""

    cost: Ratio | None  # a cost formula's markup over unit_micros
    rates: dict[str, Ratio] | None  # a rates formula's default rates
    models: dict[str, dict[str, Ratio]]  # and each model's own


class CostTable(NamedTuple):
    """One version of the project's cost table: from `starts_at` (Unix seconds, the server's clock) on."""

    version: int
    starts_at: float
    models: dict[str, dict[str, Ratio]]  # model → dimension → (micros, per)


def _ratio(decimal: str) -> Ratio:
    exact = Fraction(decimal)
    return exact.numerator, exact.denominator


def formula_of(raw: Mapping[str, Any]) -> Formula:
    """A snapshot's `usage_formula` (normalized by the server: decimals as strings)."""
    if raw["type"] == "cost":
        numerator, denominator = _ratio(str(raw["markup"]))
        return Formula((numerator, denominator * int(raw["unit_micros"])), None, {})
    rates = raw.get("rates")
    return Formula(
        None,
        None if rates is None else {name: _ratio(str(rate)) for name, rate in rates.items()},
        {
            model: {name: _ratio(str(rate)) for name, rate in own.items()}
            for model, own in (raw.get("models") or {}).items()
        },
    )


def tables_of(raw: list[Mapping[str, Any]] | None) -> list[CostTable]:
    """A snapshot's `cost_tables`, ordered by `starts_at`."""
    tables = [
        CostTable(
            int(table["version"]),
            float(table["starts_at"]),
            {
                model: {name: (int(rate["micros"]), int(rate["per"])) for name, rate in dimensions.items()}
                for model, dimensions in table["models"].items()
            },
        )
        for table in raw or ()
    ]
    return sorted(tables, key=lambda table: table.starts_at)


def _valid(model: Any, dimensions: Any) -> bool:
    """The server's parsing of a call (`entitlements.apis.usage._dimensions_parse`): what it refuses is not
    answered here."""
    if model is not None and (type(model) is not str or not MODEL.fullmatch(model)):
        return False
    if not isinstance(dimensions, Mapping) or not 0 < len(dimensions) <= MAX_DIMENSIONS:
        return False
    return all(
        type(name) is str and type(value) is int and 0 <= value <= MAX_DIMENSION_QUANTITY
        for name, value in dimensions.items()
    )


def cost_exact(rates: Mapping[str, Ratio], dimensions: Mapping[str, int]) -> Ratio | None:
    """Σ quantity × micros / per (`costs.pricing.cost_exact`), exactly; None for a dimension `rates` do not
    price."""
    numerator, denominator = 0, 1
    for name, quantity in dimensions.items():
        rate = rates.get(name)
        if rate is None:
            return None
        micros, per = rate
        if per == 1:
            numerator += quantity * micros * denominator
        else:
            numerator, denominator = numerator * per + quantity * micros * denominator, denominator * per
    return numerator, denominator


def units(
    formula: Formula,
    tables: list[CostTable],
    *,
    model: str | None,
    dimensions: Mapping[str, int],
    at: float,
) -> int | None:
    """The units the call makes at `at` (Unix seconds, the server's clock: the cost table in force then prices
    it), as `UsagePricer.price` makes them; None where the server refuses the call (see the module)."""
    if not _valid(model, dimensions):
        return None
    exact: Ratio | None = None
    if model is not None:
        index = bisect_right(tables, at, key=lambda table: table.starts_at)
        rates = tables[index - 1].models.get(model) if index else None  # an older version never applies
        if rates is not None:
            exact = cost_exact(rates, dimensions)
            if exact is None and formula.cost is not None:
                return None  # unknown_dimension: a cost formula's units are the cost
    if formula.cost is not None:
        if exact is None:
            return None  # model_not_priced
        markup, unit = formula.cost
        made = -(-exact[0] * markup // (exact[1] * unit))  # rounded up, once
    else:
        own = formula.models.get(model) if model is not None else None
        chosen = own if own is not None else formula.rates
        if chosen is None:
            return None  # model_not_priced
        numerator, denominator = 0, 1
        for name, quantity in dimensions.items():
            rate = chosen.get(name)
            if rate is None:
                return None  # unknown_dimension
            rate_numerator, rate_denominator = rate
            if rate_denominator == denominator:
                numerator += quantity * rate_numerator
            else:
                numerator, denominator = (
                    numerator * rate_denominator + quantity * rate_numerator * denominator,
                    denominator * rate_denominator,
                )
        made = -(-numerator // denominator)  # rounded up
    cost = None if exact is None else (2 * exact[0] + exact[1]) // (2 * exact[1])  # half up
    if made > MAX_UNITS or (cost is not None and cost > MAX_COST_MICROS):
        return None  # usage_too_large
    return made


class Pricing:
    """A snapshot's formulas (by feature key) and cost tables, and the offset from this machine's monotonic
    clock to the server's real clock (cost tables start on it; a test clock's customer is priced by it too)."""

    __slots__ = ("formulas", "offset", "tables")

    def __init__(self, data: Mapping[str, Any], asked_at: float) -> None:
        self.formulas = {
            key: formula_of(entry["usage_formula"])
            for key, entry in data["features"].items()
            if entry.get("usage_formula") is not None
        }
        self.tables = tables_of(data.get("cost_tables"))
        self.offset = float(data.get("issued_at", 0.0)) - asked_at

    def units(self, feature: str, model: str | None, dimensions: Mapping[str, int], now: float) -> int | None:
        """The call's units now (`now`: this machine's monotonic clock), or None: the server decides."""
        formula = self.formulas.get(feature)
        if formula is None:
            return None  # feature_has_no_formula (or a feature the snapshot does not know)
        return units(formula, self.tables, model=model, dimensions=dimensions, at=now + self.offset)


def pricing_of(data: Mapping[str, Any], asked_at: float) -> Pricing | None:
    """The snapshot's pricing, or None when none of its features has a formula (nothing to keep)."""
    features = data["features"]
    if not any(entry.get("usage_formula") is not None for entry in features.values()):
        return None
    return Pricing(data, asked_at)


def call_params(model: str | None, dimensions: Mapping[str, Any]) -> dict[str, Any]:
    """A call as `GET /entitlements/check` takes it: `model` and deepObject `dimensions[<name>]`."""
    params: dict[str, Any] = {f"dimensions[{name}]": value for name, value in dimensions.items()}
    if model is not None:
        params["model"] = model
    return params
