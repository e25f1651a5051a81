"""`GET /entitlements/check` for a call's model and dimensions (#54 point 3): the check is for the units the
feature's usage formula makes of them, priced as a usage event now (a test clock's customer at the real time), and
answers them in `quantity`; refused as a usage event is. The signed snapshot carries each formula and, for a cost
formula, the cost table versions still to apply; a new version drops every snapshot of the project."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from catalog.models import Feature
from entitlements.models import UsageEvent
from tests.entitlements.helpers import check, feature, product

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
COST = {"type": "cost", "markup": "1.5", "unit_micros": 1000}
RATES = {
    "type": "rates",
    "rates": {"input_tokens": "0.001", "output_tokens": "0.004"},
    "models": {"big": {"input_tokens": "0.01", "output_tokens": "0.03"}},
}
GPT = {
    "input_tokens": {"micros": 2_500_000, "per": 1_000_000},
    "output_tokens": {"micros": 10_000_000, "per": 1_000_000},
}
DIMS = {"dimensions[input_tokens]": 1200, "dimensions[output_tokens]": 300}


@pytest.fixture
def ai(api, tenant_a):
    p = tenant_a.project
    burn = feature(p, "ai_credits", Feature.Type.METERED)
    tokens = feature(p, "tokens", Feature.Type.METERED)
    plain = feature(p, "api_calls", Feature.Type.METERED)
    huge = feature(p, "frames", Feature.Type.METERED)
    product(p, "free", {burn: 20, tokens: 25, plain: 100, huge: 1})
    p.default_product = "free"
    p.save()
    for key, value in (
        ("ai_credits", COST),
        ("tokens", RATES),
        ("frames", {"type": "rates", "rates": {"px": 10**4}}),
    ):
        response = api.patch(f"/api/v1/features/{key}", {"usage_formula": value}, key=tenant_a.key)
        assert response.status_code == 200, response.json()
    return p


def cost_table(api, key, models, starts_at=None):
    body = {"currency": "usd", "models": models}
    if starts_at is not None:
        body["starts_at"] = starts_at.isoformat()
    response = api.post("/api/v1/cost_tables", body, key=key)
    assert response.status_code == 201, response.json()
    return response.json()


def asked(api, key, feature_key, customer="u1", **params):
    return api.get(
        "/api/v1/entitlements/check",
        key=key,
        json_body={"customer": customer, "feature": feature_key, **params},
    )


def snapshot(api, key, customer="u1"):
    response = api.get("/api/v1/entitlements/snapshot", key=key, json_body={"customer": customer})
    assert response.status_code == 200, response.json()
    return response.json()


def test_a_cost_formula_checks_the_units_of_the_cost_by_the_version_in_force(api, tenant_a, ai):
    with time_machine.travel(START, tick=False):
        cost_table(api, tenant_a.key, {"gpt-4o": GPT})
        doubled = {d: {"micros": r["micros"] * 2, "per": r["per"]} for d, r in GPT.items()}
        cost_table(api, tenant_a.key, {"gpt-4o": doubled}, starts_at=START + timedelta(minutes=10))
        answer = asked(api, tenant_a.key, "ai_credits", model="gpt-4o", **DIMS)
        assert answer.status_code == 200, answer.json()
        # 1,200 × 2.5 + 300 × 10 = 6,000 µ$; × 1.5 = 9,000 µ$ = 9 units of 1,000 µ$
        assert answer.json() == {**check(api, tenant_a.key, "u1", "ai_credits", 9), "quantity": 9}
        assert (answer.json()["allowed"], answer.json()["remaining"]) == (True, 20)
    with time_machine.travel(START + timedelta(minutes=10), tick=False):
        later = asked(api, tenant_a.key, "ai_credits", model="gpt-4o", **DIMS).json()
        assert (later["quantity"], later["allowed"], later["binding"]) == (18, True, None)
        more = asked(
            api,
            tenant_a.key,
            "ai_credits",
            model="gpt-4o",
            **{"dimensions[input_tokens]": 1200, "dimensions[output_tokens]": 400},
        ).json()
        # 3,000 × 2 + 400 × 10 × 2 = 14,000 µ$ × 1.5 = 21 units: past the limit of 20
        assert (more["quantity"], more["allowed"], more["binding"]) == (21, False, "period")
        # as_of prices by the version in force then
        then = asked(
            api,
            tenant_a.key,
            "ai_credits",
            model="gpt-4o",
            as_of=(START + timedelta(minutes=5)).isoformat(),
            **DIMS,
        ).json()
        assert (then["quantity"], then["allowed"]) == (9, True)
    assert UsageEvent.objects.count() == 0


def test_rates_with_a_model_of_its_own_and_an_entity_free_answer(api, tenant_a, ai):
    default = asked(api, tenant_a.key, "tokens", **DIMS).json()
    # 1,200 × 0.001 + 300 × 0.004 = 2.4 → 3
    assert (default["quantity"], default["allowed"], default["remaining"]) == (3, True, 25)
    big = asked(api, tenant_a.key, "tokens", model="big", **DIMS).json()
    # 1,200 × 0.01 + 300 × 0.03 = 21
    assert big == {**check(api, tenant_a.key, "u1", "tokens", 21), "quantity": 21}
    bigger = asked(api, tenant_a.key, "tokens", model="big", **{"dimensions[input_tokens]": 2600}).json()
    assert (bigger["quantity"], bigger["allowed"]) == (26, False)
    # a plain check answers as before: no `quantity`
    assert "quantity" not in check(api, tenant_a.key, "u1", "tokens")


@pytest.mark.parametrize(
    ("feature_key", "params", "status", "code", "param"),
    [
        ("api_calls", {"dimensions[input_tokens]": 1}, 400, "feature_has_no_formula", "dimensions"),
        ("tokens", {"dimensions[images]": 1}, 400, "unknown_dimension", "dimensions.images"),
        ("ai_credits", {"model": "claude", **DIMS}, 400, "model_not_priced", "model"),
        (
            "ai_credits",
            {"model": "gpt-4o", "dimensions[images]": 1},
            400,
            "unknown_dimension",
            "dimensions.images",
        ),
        (
            "frames",
            {"dimensions[px]": 10**12},
            400,
            "usage_too_large",
            "dimensions",
        ),
        ("tokens", {"quantity": 2, **DIMS}, 400, "parameter_conflict", "quantity"),
        ("tokens", {"model": "big"}, 400, "parameter_missing", "dimensions"),
        ("tokens", {"dimensions[input_tokens]": "x"}, 400, "invalid_parameter", "dimensions.input_tokens"),
        ("tokens", {"dimensions[input_tokens]": -1}, 400, "invalid_parameter", "dimensions.input_tokens"),
        ("tokens", {"model": "bad model", **DIMS}, 400, "invalid_parameter", "model"),
        ("tokens", {"dimensions": '{"input_tokens": 1}'}, 400, "invalid_parameter", "dimensions"),
        ("nothing", DIMS, 404, "resource_missing", "feature"),
        ("tokens", {**DIMS, "quantiy": 2}, 400, "unknown_parameter", "quantiy"),
        ("tokens", {**DIMS, "dimensions[images": 2}, 400, "unknown_parameter", "dimensions[images"),
    ],
)
def test_refused_as_a_usage_event_is(api, tenant_a, ai, feature_key, params, status, code, param):
    cost_table(api, tenant_a.key, {"gpt-4o": GPT})
    response = asked(api, tenant_a.key, feature_key, **params)
    assert response.status_code == status, response.json()
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (code, param)


def test_a_test_clock_customer_is_priced_at_the_real_time(api, tenant_a, ai):
    from tests.entitlements.helpers import customer

    with time_machine.travel(START, tick=False):
        cost_table(api, tenant_a.key, {"gpt-4o": GPT})
        doubled = {d: {"micros": r["micros"] * 2, "per": r["per"]} for d, r in GPT.items()}
        cost_table(api, tenant_a.key, {"gpt-4o": doubled}, starts_at=START + timedelta(minutes=10))
    clock = api.post(
        "/api/v1/test_clocks", {"frozen_time": (START + timedelta(days=3)).isoformat()}, key=tenant_a.key
    )
    assert clock.status_code in (200, 201), clock.json()
    held = customer(ai, "u-clock")
    held.test_clock_id = clock.json()["id"]
    held.save()
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        answer = asked(api, tenant_a.key, "ai_credits", customer="u-clock", model="gpt-4o", **DIMS).json()
    assert (
        answer["quantity"] == 9
    )  # version 1, in force at the real time (the clock's is past version 2's start)


def test_the_snapshot_carries_formulas_and_the_cost_tables_still_to_apply(api, tenant_a, ai):
    with time_machine.travel(START, tick=False):
        cost_table(api, tenant_a.key, {"gpt-4o": GPT})
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        second = cost_table(api, tenant_a.key, {"mini": {"input_tokens": 1}})
        third = cost_table(
            api, tenant_a.key, {"gpt-4o": {"output_tokens": 3}}, starts_at=START + timedelta(hours=1)
        )
        body = snapshot(api, tenant_a.key)
    assert body["features"]["ai_credits"]["usage_formula"] == COST
    assert body["features"]["tokens"]["usage_formula"] == {
        "type": "rates",
        "rates": {"input_tokens": "0.001", "output_tokens": "0.004"},
        "models": {"big": {"input_tokens": "0.01", "output_tokens": "0.03"}},
    }
    assert "usage_formula" not in body["features"]["api_calls"]
    assert body["cost_tables"] == [
        {
            "version": second["version"],
            "currency": "usd",
            "starts_at": (START + timedelta(minutes=1)).timestamp(),
            "models": {"mini": {"input_tokens": {"micros": 1, "per": 1}}},
        },
        {
            "version": third["version"],
            "currency": "usd",
            "starts_at": (START + timedelta(hours=1)).timestamp(),
            "models": {"gpt-4o": {"output_tokens": {"micros": 3, "per": 1}}},
        },
    ]


def test_no_cost_formula_no_cost_tables_and_a_new_version_moves_the_answers_version(api, tenant_a, ai):
    before = snapshot(api, tenant_a.key)
    assert "cost_tables" in before  # ai_credits follows the cost: [] while the project has no table
    assert before["cost_tables"] == []
    cost_table(api, tenant_a.key, {"gpt-4o": GPT})
    after = snapshot(api, tenant_a.key)
    assert after["answers"] != before["answers"]
    assert [table["version"] for table in after["cost_tables"]] == [1]
    response = api.patch("/api/v1/features/ai_credits", {"usage_formula": None}, key=tenant_a.key)
    assert response.status_code == 200
    plain = snapshot(api, tenant_a.key)
    assert "cost_tables" not in plain
    assert "usage_formula" not in plain["features"]["ai_credits"]
