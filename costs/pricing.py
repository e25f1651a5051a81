"""The arithmetic of a cost table, without the database: the shape of its `models` (`parse_models`), what a use
costs by it (`cost_micros`), and which version prices a use at a moment (`rates_at`).

A rate is `(micros, per)`: `micros` micro-units of the table's currency per `per` units of a dimension (gpt-4o's
input tokens at $2.50 a million are `(2_500_000, 1_000_000)`). A cost is summed exactly and rounded once, at the
end, to the nearest micro-unit, half up.
"""

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from core.errors import InvalidRequest

Rate = tuple[int, int]  # (micros, per)
Rates = dict[str, dict[str, Rate]]  # model → dimension → rate

MAX_NAME_LENGTH = 100
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]*")
NAME_PATTERN = f"^{NAME.pattern}$"
MAX_MICROS = 10**15
MAX_PER = 10**12
MODELS_SHAPE = '{"<model>": {"<dimension>": {"micros": n, "per": n}}}'


class CostTableRow(NamedTuple):
    """One version of a project's cost table, as the pricing of a batch of uses reads it (loaded once a batch)."""

    version: int
    currency: str
    starts_at: datetime
    models: Rates


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", code="invalid_parameter", param=param)


def _name_ok(name: Any) -> bool:
    return isinstance(name, str) and 0 < len(name) <= MAX_NAME_LENGTH and NAME.fullmatch(name) is not None


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def parse_models(raw: Any) -> Rates:
    """The rates of `raw`, a cost table's `models` as a caller gives them: each rate `{"micros": m, "per": p}`
    (`per` defaults to 1) or a bare integer (micros per one unit). 400 `invalid_parameter` naming the first
    part that is wrong (`models`, `models.<model>` or `models.<model>.<dimension>`)."""
    if not isinstance(raw, dict) or not raw:
        raise _invalid(f"give at least one model, as {MODELS_SHAPE}.", "models")
    parsed: Rates = {}
    for model, dimensions in raw.items():
        param = f"models.{model}"
        if not _name_ok(model):
            raise _invalid(
                f"{model!r} is not a model name: 1 to {MAX_NAME_LENGTH} letters, digits and . _ : / -, starting "
                "with a letter or a digit.",
                param,
            )
        if not isinstance(dimensions, dict) or not dimensions:
            raise _invalid('give at least one dimension, as {"<dimension>": {"micros": n, "per": n}}.', param)
        rates: dict[str, Rate] = {}
        for dimension, rate in dimensions.items():
            if not _name_ok(dimension):
                raise _invalid(
                    f"{dimension!r} is not a dimension name: 1 to {MAX_NAME_LENGTH} letters, digits and "
                    ". _ : / -, starting with a letter or a digit.",
                    f"{param}.{dimension}",
                )
            rates[dimension] = _rate(rate, f"{param}.{dimension}")
        parsed[model] = dict(sorted(rates.items()))
    return dict(sorted(parsed.items()))


def _rate(raw: Any, param: str) -> Rate:
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - {"micros", "per"}, key=str)
        if unknown:
            raise _invalid(f'unknown field {unknown[0]!r}; a rate is {{"micros": n, "per": n}}.', param)
        if "micros" not in raw:
            raise _invalid('a rate is {"micros": n, "per": n}; micros is missing.', param)
        micros, per = raw["micros"], raw.get("per", 1)
    else:
        micros, per = raw, 1
    if not _whole(micros, 0, MAX_MICROS):
        raise _invalid(
            f"micros is a whole number of micro-units of the currency, from 0 to {MAX_MICROS}; got {micros!r}.",
            param,
        )
    if not _whole(per, 1, MAX_PER):
        raise _invalid(f"per is a whole number of units, from 1 to {MAX_PER}; got {per!r}.", param)
    return micros, per


def models_stored(rates: Rates) -> dict[str, dict[str, dict[str, int]]]:
    """Rates as a cost table stores and answers them: every rate `{"micros": m, "per": p}`."""
    return {
        model: {dimension: {"micros": micros, "per": per} for dimension, (micros, per) in dimensions.items()}
        for model, dimensions in rates.items()
    }


def models_rates(stored: Mapping[str, Mapping[str, Mapping[str, int]]]) -> Rates:
    """A stored table's `models` (`models_stored`'s shape, validated when written) as rates."""
    return {
        model: {dimension: (rate["micros"], rate["per"]) for dimension, rate in dimensions.items()}
        for model, dimensions in stored.items()
    }


def cost_exact(
    rates: dict[str, Rate], dimensions: dict[str, int], *, param: str = "dimensions"
) -> tuple[int, int]:
    """What a use of `dimensions` (dimension → quantity) costs at `rates` (one model's), exactly: (numerator,
    denominator) in micro-units of the table's currency, the sum of quantity × micros / per. 400
    `unknown_dimension` for a dimension the rates do not price."""
    # In integers (a batch prices 1,000 events: `Fraction` normalizes at every step): the denominator is the
    # product of the `per`s met.
    numerator, denominator = 0, 1
    for name, quantity in dimensions.items():
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            raise _invalid(f"a quantity is a whole number from 0 up; got {quantity!r}.", f"{param}.{name}")
        rate = rates.get(name)
        if rate is None:
            raise InvalidRequest(
                f"{param}.{name}: the cost table prices no dimension {name!r} for this model.",
                code="unknown_dimension",
                param=f"{param}.{name}",
            )
        micros, per = rate
        if per == 1:
            numerator += quantity * micros * denominator
        else:
            numerator, denominator = numerator * per + quantity * micros * denominator, denominator * per
    return numerator, denominator


def cost_micros(rates: dict[str, Rate], dimensions: dict[str, int], *, param: str = "dimensions") -> int:
    """`cost_exact` rounded once to the nearest micro-unit, half up (what a use is shown and stored to cost)."""
    numerator, denominator = cost_exact(rates, dimensions, param=param)
    return half_up(numerator, denominator)


def half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator (≥ 0) to the nearest whole number, half up: floor(x + 1/2)."""
    return (2 * numerator + denominator) // (2 * denominator)


def rates_at(
    tables: Sequence[CostTableRow], model: str, at: datetime
) -> tuple[CostTableRow, dict[str, Rate]] | None:
    """The version in force at `at` (the latest whose `starts_at` is not after it; `tables` ordered by
    `starts_at`, as `costs.selectors.cost_table_rows` gives them) and its rates for `model`; None when no version
    is in force then, or when that version does not price `model` (an older version's rates never apply)."""
    index = bisect_right(tables, at, key=lambda row: row.starts_at)
    if index == 0:
        return None
    table = tables[index - 1]
    rates = table.models.get(model)
    return None if rates is None else (table, rates)
