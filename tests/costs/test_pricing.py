"""The arithmetic of a cost table (`costs.pricing`), without the database: the rates' shape, the cost of a use
(exact, rounded once, half up) and which version prices a use at a moment."""

from datetime import UTC, datetime, timedelta

import pytest

from core.errors import InvalidRequest
from costs.pricing import CostTableRow, cost_micros, parse_models, rates_at

GPT_INPUT = (2_500_000, 1_000_000)  # $2.50 a million tokens


def _error(exc: pytest.ExceptionInfo[InvalidRequest]) -> tuple[str, str | None, str]:
    return exc.value.code, exc.value.param, exc.value.message


def test_a_rate_is_micros_per_units_or_a_bare_integer_per_one_unit():
    assert parse_models(
        {
            "gpt-4o": {
                "output_tokens": {"micros": 10_000_000, "per": 1_000_000},
                "input_tokens": {"micros": 2_500_000, "per": 1_000_000},
                "images": 40_000,
                "seconds": {"micros": 0},
            },
            "anthropic/claude-3.5:sonnet": {"cached_tokens": {"micros": 3, "per": 10}},
        }
    ) == {
        "anthropic/claude-3.5:sonnet": {"cached_tokens": (3, 10)},
        "gpt-4o": {
            "images": (40_000, 1),
            "input_tokens": (2_500_000, 1_000_000),
            "output_tokens": (10_000_000, 1_000_000),
            "seconds": (0, 1),
        },
    }


def test_the_bounds_of_a_rate_and_a_name_are_accepted():
    name = "A" + "b" * 99
    assert parse_models({name: {name: {"micros": 10**15, "per": 10**12}}, "0": {"x": 0}}) == {
        "0": {"x": (0, 1)},
        name: {name: (10**15, 10**12)},
    }


SHAPE = 'give at least one model, as {"<model>": {"<dimension>": {"micros": n, "per": n}}}.'
NAME_RULE = "1 to 100 letters, digits and . _ : / -, starting with a letter or a digit."


@pytest.mark.parametrize(
    ("models", "param", "message"),
    [
        (None, "models", SHAPE),
        ([], "models", SHAPE),
        ({}, "models", SHAPE),
        ({"-gpt": {"x": 1}}, "models.-gpt", f"'-gpt' is not a model name: {NAME_RULE}"),
        ({"": {"x": 1}}, "models.", f"'' is not a model name: {NAME_RULE}"),
        ({"a" * 101: {"x": 1}}, f"models.{'a' * 101}", f"{'a' * 101!r} is not a model name: {NAME_RULE}"),
        ({"gpt 4": {"x": 1}}, "models.gpt 4", f"'gpt 4' is not a model name: {NAME_RULE}"),
        (
            {"gpt": {}},
            "models.gpt",
            'give at least one dimension, as {"<dimension>": {"micros": n, "per": n}}.',
        ),
        (
            {"gpt": [1]},
            "models.gpt",
            'give at least one dimension, as {"<dimension>": {"micros": n, "per": n}}.',
        ),
        (
            {"gpt": {"in put": 1}},
            "models.gpt.in put",
            f"'in put' is not a dimension name: {NAME_RULE}",
        ),
        (
            {"gpt": {"in": {"per": 1}}},
            "models.gpt.in",
            'a rate is {"micros": n, "per": n}; micros is missing.',
        ),
        (
            {"gpt": {"in": {"micros": 1, "unit": "token"}}},
            "models.gpt.in",
            'unknown field \'unit\'; a rate is {"micros": n, "per": n}.',
        ),
        (
            {"gpt": {"in": -1}},
            "models.gpt.in",
            "micros is a whole number of micro-units of the currency, from 0 to 1000000000000000; got -1.",
        ),
        (
            {"gpt": {"in": 2.5}},
            "models.gpt.in",
            "micros is a whole number of micro-units of the currency, from 0 to 1000000000000000; got 2.5.",
        ),
        (
            {"gpt": {"in": True}},
            "models.gpt.in",
            "micros is a whole number of micro-units of the currency, from 0 to 1000000000000000; got True.",
        ),
        (
            {"gpt": {"in": {"micros": 10**15 + 1}}},
            "models.gpt.in",
            "micros is a whole number of micro-units of the currency, from 0 to 1000000000000000; "
            "got 1000000000000001.",
        ),
        (
            {"gpt": {"in": {"micros": "5"}}},
            "models.gpt.in",
            "micros is a whole number of micro-units of the currency, from 0 to 1000000000000000; got '5'.",
        ),
        (
            {"gpt": {"in": {"micros": 1, "per": 0}}},
            "models.gpt.in",
            "per is a whole number of units, from 1 to 1000000000000; got 0.",
        ),
        (
            {"gpt": {"in": {"micros": 1, "per": 10**12 + 1}}},
            "models.gpt.in",
            "per is a whole number of units, from 1 to 1000000000000; got 1000000000001.",
        ),
        (
            {"gpt": {"in": {"micros": 1, "per": None}}},
            "models.gpt.in",
            "per is a whole number of units, from 1 to 1000000000000; got None.",
        ),
    ],
)
def test_a_malformed_table_is_refused_naming_the_part(models, param, message):
    with pytest.raises(InvalidRequest) as refused:
        parse_models(models)
    assert _error(refused) == ("invalid_parameter", param, f"{param}: {message}")


@pytest.mark.parametrize(
    ("rates", "dimensions", "micros"),
    [
        ({"input_tokens": GPT_INPUT}, {"input_tokens": 1_234}, 3_085),  # 3085.0 exactly
        ({"input_tokens": GPT_INPUT}, {"input_tokens": 1}, 3),  # 2.5 → 3, half up
        ({"input_tokens": GPT_INPUT}, {"input_tokens": 3}, 8),  # 7.5 → 8
        ({"input_tokens": GPT_INPUT}, {"input_tokens": 5}, 13),  # 12.5 → 13
        ({"input_tokens": GPT_INPUT}, {"input_tokens": 1_000_000}, 2_500_000),
        ({"input_tokens": GPT_INPUT}, {"input_tokens": 0}, 0),
        ({"x": (1, 2)}, {"x": 3}, 2),  # 1.5 → 2
        ({"x": (1, 2)}, {"x": 1}, 1),  # 0.5 → 1
        ({"x": (1, 3)}, {"x": 1}, 0),  # 0.333… → 0
        ({"x": (2, 3)}, {"x": 1}, 1),  # 0.666… → 1
        # Rounded once over the sum, not per dimension: 0.4 + 0.4 = 0.8 → 1 (0 + 0 if each were rounded).
        ({"x": (2, 5), "y": (2, 5)}, {"x": 1, "y": 1}, 1),
        # 1/3 + 1/6 = 1/2 exactly → 1 (floating point would land either side of it).
        ({"x": (1, 3), "y": (1, 6)}, {"x": 1, "y": 1}, 1),
        ({"x": (7, 1)}, {}, 0),
        ({"x": (10**15, 1)}, {"x": 10**12}, 10**27),
    ],
)
def test_a_cost_is_summed_exactly_and_rounded_once_half_up(rates, dimensions, micros):
    assert cost_micros(rates, dimensions) == micros


def test_a_dimension_the_rates_do_not_price_is_refused():
    with pytest.raises(InvalidRequest) as refused:
        cost_micros(
            {"input_tokens": GPT_INPUT}, {"input_tokens": 10, "images": 1}, param="events[3].dimensions"
        )
    assert _error(refused) == (
        "unknown_dimension",
        "events[3].dimensions.images",
        "events[3].dimensions.images: the cost table prices no dimension 'images' for this model.",
    )
    with pytest.raises(InvalidRequest) as refused:
        cost_micros({}, {"seconds": 1})
    assert _error(refused) == (
        "unknown_dimension",
        "dimensions.seconds",
        "dimensions.seconds: the cost table prices no dimension 'seconds' for this model.",
    )


@pytest.mark.parametrize("quantity", [-1, True, 1.5, "2", None])
def test_a_quantity_is_a_whole_number_from_zero(quantity):
    with pytest.raises(InvalidRequest) as refused:
        cost_micros({"x": (1, 1)}, {"x": quantity})
    assert _error(refused) == (
        "invalid_parameter",
        "dimensions.x",
        f"dimensions.x: a quantity is a whole number from 0 up; got {quantity!r}.",
    )


T0 = datetime(2026, 3, 1, tzinfo=UTC)
V1 = CostTableRow(1, "usd", T0, {"gpt-4o": {"in": (2, 1)}, "gpt-3.5": {"in": (1, 1)}})
V2 = CostTableRow(2, "usd", T0 + timedelta(days=10), {"gpt-4o": {"in": (3, 1)}})
V3 = CostTableRow(3, "eur", T0 + timedelta(days=20), {"gpt-4o": {"in": (4, 1)}, "gpt-3.5": {"in": (5, 1)}})
TABLES = [V1, V2, V3]
US = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("model", "at", "expected"),
    [
        ("gpt-4o", T0 - US, None),  # before the first version: nothing in force
        ("gpt-4o", T0, (V1, {"in": (2, 1)})),  # exactly at a start: that version
        ("gpt-4o", V2.starts_at - US, (V1, {"in": (2, 1)})),
        ("gpt-4o", V2.starts_at, (V2, {"in": (3, 1)})),
        ("gpt-4o", V3.starts_at - US, (V2, {"in": (3, 1)})),
        ("gpt-4o", V3.starts_at, (V3, {"in": (4, 1)})),
        ("gpt-4o", V3.starts_at + timedelta(days=3650), (V3, {"in": (4, 1)})),
        ("gpt-3.5", V2.starts_at - US, (V1, {"in": (1, 1)})),
        # Version 2 does not price gpt-3.5: nothing does while it is in force, though version 1 did.
        ("gpt-3.5", V2.starts_at, None),
        ("gpt-3.5", V3.starts_at, (V3, {"in": (5, 1)})),
        ("llama", V3.starts_at, None),
    ],
)
def test_the_version_in_force_is_the_latest_that_has_started(model, at, expected):
    assert rates_at(TABLES, model, at) == expected


def test_no_version_no_rates():
    assert rates_at([], "gpt-4o", T0) is None
