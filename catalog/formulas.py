"""How a metered feature turns a usage event's dimensions into units (`Feature.usage_formula`): AI usage priced by
model and token. Pure: no database.

Two kinds, normalized by `formula_parse`:
- `{"type": "cost", "markup": "1.5", "unit_micros": 1000}`: the event's cost (what the model's dimensions cost the
  tenant, by its cost table in force at the event's time: `costs.pricing`) times the markup, in units worth
  `unit_micros` micro-units each;
- `{"type": "rates", "rates": {"input_tokens": "0.001", "output_tokens": "0.004"}, "models": {"gpt-4o": {...}}}`:
  each dimension's quantity times its rate, summed; a model named in `models` takes its own rates instead of
  `rates`.

Either way the sum is rounded up once, to a whole unit (a call that used anything uses at least one unit of the
feature), and the result is stored with the event: a later change of the formula or of a cost table never rewrites
an event recorded before it.
"""

import re
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

from core.errors import InvalidRequest

MAX_DIMENSIONS = 20
MAX_DIMENSION_QUANTITY = 10**12
MAX_UNITS = 10**12  # what a formula may make of one event: a usage event's quantity at most (as the API's)
MAX_WHOLE = 999_999_999  # a rate or markup's whole part: nine digits
# A model's name (as the cost table's), and a decimal. The patterns are JSON Schema's too (`$`, not `\Z`): match
# them with `fullmatch`, never `match` (`$` matches before a trailing newline).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")
DECIMAL = {places: re.compile(rf"^[0-9]{{1,9}}(\.[0-9]{{1,{places}}})?$") for places in (6, 9)}
FORMULA_HELP = (
    'How usage events\' `dimensions` become units: {"type": "cost", "markup": "1.5", "unit_micros": 1000} (the '
    "cost by the project's cost table in force at the event's time, times the markup, in units worth "
    '`unit_micros` micro-units each) or {"type": "rates", "rates": {"input_tokens": "0.001", ...}, "models": '
    '{"<model>": {...}}} (each dimension times its rate, a model in `models` taking its own rates; `rates` or '
    "`models` or both); rounded up once to a whole unit and stored with the event. Rates and markups are decimal "
    "strings (or integers). Metered features only; null: events give `quantity`."
)


def _decimal(raw: Any, param: str, *, places: int = 9) -> Decimal:
    """A rate or markup: a decimal string (up to nine digits before the point, `places` after) or an integer,
    ≥ 0; exact (never a float)."""
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= MAX_WHOLE:
        return Decimal(raw)
    if isinstance(raw, str) and DECIMAL[places].fullmatch(raw):
        value = Decimal(raw)
        return value.normalize() if value else Decimal(0)
    raise InvalidRequest(
        f'{param}: a decimal string from 0 to {MAX_WHOLE:,} with at most {places} decimals ("0.004"), or an '
        "integer.",
        code="invalid_parameter",
        param=param,
    )


def _rates(raw: Any, param: str) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw or len(raw) > MAX_DIMENSIONS:
        raise InvalidRequest(
            f"{param}: an object of 1 to {MAX_DIMENSIONS} dimensions, each with its rate.",
            code="invalid_parameter",
            param=param,
        )
    rates: dict[str, str] = {}
    for name, rate in sorted(raw.items()):
        rates[name] = format(_decimal(rate, f"{param}.{name}"), "f")
    return rates


def formula_parse(raw: Any, param: str = "usage_formula") -> dict[str, Any] | None:
    """The formula normalized (decimals as strings, keys sorted), or None for null; 400 naming the field."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{param}: an object, or null.", code="invalid_parameter", param=param)
    kind = raw.get("type")
    kinds = {"cost": {"type", "markup", "unit_micros"}, "rates": {"type", "rates", "models"}}
    allowed = kinds.get(kind) if isinstance(kind, str) else None
    if allowed is None:
        raise InvalidRequest(f"{param}.type: cost or rates.", code="invalid_parameter", param=f"{param}.type")
    extra = sorted(set(raw) - allowed)
    if extra:
        raise InvalidRequest(
            f"{param}.{extra[0]}: Unknown parameter (a {kind} formula takes {', '.join(sorted(allowed))}).",
            code="unknown_parameter",
            param=f"{param}.{extra[0]}",
        )
    if kind == "cost":
        unit = raw.get("unit_micros", 1)
        if isinstance(unit, bool) or not isinstance(unit, int) or not 1 <= unit <= 10**12:
            raise InvalidRequest(
                f"{param}.unit_micros: an integer from 1 to 10^12 (micro-units of the cost's currency a unit is "
                "worth).",
                code="invalid_parameter",
                param=f"{param}.unit_micros",
            )
        return {
            "type": "cost",
            "markup": format(_decimal(raw.get("markup", "1"), f"{param}.markup", places=6), "f"),
            "unit_micros": unit,
        }
    models = raw.get("models")
    models = {} if models is None else models
    if not isinstance(models, dict) or len(models) > 1000:
        raise InvalidRequest(
            f"{param}.models: an object of models, each with its rates.",
            code="invalid_parameter",
            param=f"{param}.models",
        )
    if raw.get("rates") is None and not models:
        raise InvalidRequest(
            f"{param}.rates: a rates formula needs `rates`, or `models` with their own.",
            code="parameter_missing",
            param=f"{param}.rates",
        )
    formula: dict[str, Any] = {
        "type": "rates",
        "rates": _rates(raw["rates"], f"{param}.rates") if raw.get("rates") is not None else None,
    }
    by_model: dict[str, dict[str, str]] = {}
    for model, rates in sorted(models.items()):
        by_model[model] = _rates(rates, f"{param}.models.{model}")
    formula["models"] = by_model
    return formula


class CompiledFormula(NamedTuple):
    """A formula as `formula_units` applies it, every decimal as an exact (numerator, denominator)."""

    cost: tuple[int, int] | None  # a cost formula's markup over unit_micros
    rates: dict[str, tuple[int, int]] | None  # a rates formula's default rates
    models: dict[str, dict[str, tuple[int, int]]]  # and each model's own


def _ratio(decimal: str) -> tuple[int, int]:
    exact = Fraction(decimal)
    return exact.numerator, exact.denominator


def formula_compile(formula: dict[str, Any]) -> CompiledFormula:
    """Once a batch per feature: `formula_units` is integer arithmetic then."""
    if formula["type"] == "cost":
        numerator, denominator = _ratio(formula["markup"])
        return CompiledFormula((numerator, denominator * formula["unit_micros"]), None, {})
    rates = formula["rates"]
    return CompiledFormula(
        None,
        None if rates is None else {name: _ratio(rate) for name, rate in rates.items()},
        {
            model: {name: _ratio(rate) for name, rate in own.items()}
            for model, own in formula["models"].items()
        },
    )


def formula_units(
    formula: CompiledFormula,
    *,
    model: str | None,
    dimensions: dict[str, int],
    cost: tuple[int, int] | None,
    param: str = "dimensions",
) -> int:
    """The units an event uses: rounded up once to a whole unit. A cost formula takes the event's exact `cost`
    (numerator, denominator) in micro-units, the caller's from the cost table (never the cost rounded to a
    micro-unit: that would round twice); a rates formula the model's own rates, or the default ones. 400
    `unknown_dimension` for a dimension the rates don't name, `model_not_priced` when nothing prices the call."""
    if formula.cost is not None:
        if cost is None:
            raise InvalidRequest(
                f"model: no cost table in force at the event's time prices {model!r}; this feature's units "
                "follow the cost.",
                code="model_not_priced",
                param="model",
            )
        markup, unit = formula.cost
        return -(-cost[0] * markup // (cost[1] * unit))  # rounded up, once
    rates = formula.models.get(model) if model is not None else None
    if rates is None:
        rates = formula.rates
    if rates is None:
        raise InvalidRequest(
            f"model: this feature's rates name no model {model!r} and it has no default rates.",
            code="model_not_priced",
            param="model",
        )
    numerator, denominator = 0, 1
    for name, quantity in dimensions.items():
        rate = rates.get(name)
        if rate is None:
            raise InvalidRequest(
                f"{param}.{name}: the feature's rates name no dimension {name!r}"
                + (f" for {model!r}." if model is not None else "."),
                code="unknown_dimension",
                param=f"{param}.{name}",
            )
        rate_numerator, rate_denominator = rate
        if rate_denominator == denominator:
            numerator += quantity * rate_numerator
        else:
            numerator, denominator = (
                numerator * rate_denominator + quantity * rate_numerator * denominator,
                denominator * rate_denominator,
            )
    return -(-numerator // denominator)  # rounded up


def _decimal_schema(places: int) -> dict[str, Any]:
    return {
        "oneOf": [
            {"type": "string", "pattern": DECIMAL[places].pattern},
            {"type": "integer", "minimum": 0, "maximum": MAX_WHOLE},
        ]
    }


_RATES_SCHEMA = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": MAX_DIMENSIONS,
    "additionalProperties": _decimal_schema(9),
}
# The OpenAPI schema of a formula as the API takes it (`FormulaField`); the server's rule between `rates` and
# `models` (one of them at least) is stated in words.
FORMULA_SCHEMA: dict[str, Any] = {
    "nullable": True,
    "description": FORMULA_HELP,
    "oneOf": [
        {
            "type": "object",
            "required": ["type"],
            "additionalProperties": False,
            "properties": {
                "type": {"type": "string", "enum": ["cost"]},
                "markup": _decimal_schema(6),
                "unit_micros": {"type": "integer", "minimum": 1, "maximum": 10**12, "default": 1},
            },
        },
        {
            "type": "object",
            "required": ["type"],
            "additionalProperties": False,
            "properties": {
                "type": {"type": "string", "enum": ["rates"]},
                "rates": {**_RATES_SCHEMA, "nullable": True},
                "models": {
                    "type": "object",
                    "nullable": True,
                    "maxProperties": 1000,
                    "additionalProperties": _RATES_SCHEMA,
                },
            },
        },
    ],
}
