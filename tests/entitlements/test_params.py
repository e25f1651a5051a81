"""The hand-parsed query parameters of the entitlement GET views: one declaration each
(`entitlements.apis.params`) gives both the parser and the OpenAPI parameter, so the schema and the parser agree."""

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from core.errors import InvalidRequest
from entitlements.apis.check import DIMENSIONS_PARAMETER, MODEL_PARAMETER
from entitlements.apis.params import AS_OF, CUSTOMER, ENTITY, FEATURE, MAX_ID_LENGTH, QUANTITY


@pytest.fixture(scope="module")
def schema_paths() -> dict[str, Any]:
    paths: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    return paths


@pytest.mark.parametrize(
    ("path", "declared"),
    [
        (
            "/api/v1/entitlements/check",
            [AS_OF, CUSTOMER, DIMENSIONS_PARAMETER, ENTITY, FEATURE, MODEL_PARAMETER, QUANTITY],
        ),
        ("/api/v1/entitlements", [AS_OF, CUSTOMER]),
    ],
)
def test_declared_parameters_are_the_documented_ones(
    schema_paths: dict[str, Any], path: str, declared: list[Any]
) -> None:
    documented = [p for p in schema_paths[path]["get"]["parameters"] if p["in"] == "query"]
    assert [(p["name"], p.get("required", False), p["description"]) for p in documented] == [
        (d.name, d.required, d.description) for d in declared
    ]
    types = {
        "customer": "string",
        "feature": "string",
        "quantity": "integer",
        "as_of": "string",
        "entity": "string",
        "model": "string",
        "dimensions": "object",
    }
    assert [p["schema"]["type"] for p in documented] == [types[d.name] for d in declared]


def test_parse_accepts_and_defaults() -> None:
    params = {"customer": "u_1", "feature": "api_calls", "quantity": "3"}
    assert (CUSTOMER.parse(params), FEATURE.parse(params), QUANTITY.parse(params)) == ("u_1", "api_calls", 3)
    assert QUANTITY.parse({}) == 1
    assert QUANTITY.parse({"quantity": ""}) == 1
    assert QUANTITY.parse({"quantity": "0"}) == 0


@pytest.mark.parametrize(
    ("declared", "params", "code", "message"),
    [
        (CUSTOMER, {}, "parameter_missing", "customer: this parameter is required."),
        (FEATURE, {"feature": ""}, "parameter_missing", "feature: this parameter is required."),
        (
            CUSTOMER,
            {"customer": "x" * (MAX_ID_LENGTH + 1)},
            "invalid_parameter",
            f"customer: at most {MAX_ID_LENGTH} characters.",
        ),
        (QUANTITY, {"quantity": "-1"}, "invalid_parameter", "quantity: an integer ≥ 0."),
        (QUANTITY, {"quantity": "two"}, "invalid_parameter", "quantity: an integer ≥ 0."),
        (QUANTITY, {"quantity": str(10**12 + 1)}, "invalid_parameter", "quantity: an integer ≥ 0."),
    ],
)
def test_parse_refusals(declared: Any, params: dict[str, str], code: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        declared.parse(params)
    assert (refused.value.code, refused.value.message, refused.value.param) == (code, message, declared.name)


def test_as_of_is_a_past_instant_in_iso_8601() -> None:
    from datetime import UTC, datetime

    assert AS_OF.parse({}) is None
    assert AS_OF.parse({"as_of": ""}) is None
    assert AS_OF.parse({"as_of": "2026-01-02T03:04:05Z"}) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert AS_OF.parse({"as_of": "2026-01-02T03:04:05"}) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert AS_OF.parse({"as_of": "2026-01-02T05:04:05+02:00"}) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    for raw, message in (
        ("2026-01-02T05:04:05 02:00", "as_of: an ISO 8601 time"),  # an unencoded `+` arrives as a space
        ("2026-13-02T00:00:00Z", "as_of: an ISO 8601 time"),
        ("2999-01-01T00:00:00Z", "as_of: a time in the past"),
    ):
        with pytest.raises(InvalidRequest) as refused:
            AS_OF.parse({"as_of": raw})
        assert (refused.value.code, refused.value.param) == ("invalid_parameter", "as_of")
        assert refused.value.message.startswith(message)
