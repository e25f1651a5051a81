"""Usage priced by model and token (#54 points 1–2): a metered feature's usage formula turns an event's dimensions
into units, by per-dimension rates or by the cost table in force at the event's time times a markup; the units and
the cost are stored with the event, so a later cost table or formula never rewrites it."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from catalog.models import Feature
from entitlements.models import UsageCounter, UsageEvent
from tests.entitlements.helpers import check, feature, product

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
RATES = {
    "type": "rates",
    "rates": {"input_tokens": "0.001", "output_tokens": "0.004"},
    "models": {"big": {"input_tokens": "0.01", "output_tokens": "0.03"}},
}
COST = {"type": "cost", "markup": "1.5", "unit_micros": 1000}
GPT = {
    "input_tokens": {"micros": 2_500_000, "per": 1_000_000},
    "output_tokens": {"micros": 10_000_000, "per": 1_000_000},
}


@pytest.fixture
def ai(tenant_a):
    p = tenant_a.project
    tokens = feature(p, "tokens", Feature.Type.METERED)
    burn = feature(p, "ai_credits", Feature.Type.METERED)
    plain = feature(p, "api_calls", Feature.Type.METERED)
    product(p, "free", {tokens: 1000, burn: 1000, plain: 100})
    p.default_product = "free"
    p.save()
    return p


def formula(api, key, feature_key, value):
    response = api.patch(f"/api/v1/features/{feature_key}", {"usage_formula": value}, key=key)
    assert response.status_code == 200, response.json()
    return response.json()["usage_formula"]


def cost_table(api, key, models, starts_at=None):
    body = {"currency": "usd", "models": models}
    if starts_at is not None:
        body["starts_at"] = starts_at.isoformat()
    response = api.post("/api/v1/cost_tables", body, key=key)
    assert response.status_code == 201, response.json()
    return response.json()


def usage(api, key, event_id, feature="tokens", customer="u1", **fields):
    return api.post(
        "/api/v1/usage", {"id": event_id, "customer": customer, "feature": feature, **fields}, key=key
    )


def test_a_formula_is_stored_normalized_and_only_on_a_metered_feature(api, tenant_a, ai):
    assert formula(
        api,
        tenant_a.key,
        "tokens",
        {"type": "rates", "rates": {"input_tokens": "0.0010", "output_tokens": "0.004"}},
    ) == {
        "type": "rates",
        "rates": {"input_tokens": "0.001", "output_tokens": "0.004"},
        "models": {},
    }
    assert formula(
        api, tenant_a.key, "api_calls", {"type": "rates", "rates": {"images": 10, "seconds": "2.50"}}
    )["rates"] == {"images": "10", "seconds": "2.5"}
    formula(api, tenant_a.key, "api_calls", None)
    assert formula(api, tenant_a.key, "ai_credits", {"type": "cost", "markup": "2.50"}) == {
        "type": "cost",
        "markup": "2.5",
        "unit_micros": 1,
    }
    feature(ai, "sso")
    response = api.patch("/api/v1/features/sso", {"usage_formula": COST}, key=tenant_a.key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "formula_not_metered"
    assert Feature.objects.get(key="sso").usage_formula is None
    for bad, param in [
        ({"type": "sum"}, "usage_formula.type"),
        ({"type": "cost", "markup": "-1"}, "usage_formula.markup"),
        ({"type": "cost", "markup": "1.1234567"}, "usage_formula.markup"),
        ({"type": "cost", "unit_micros": 0}, "usage_formula.unit_micros"),
        ({"type": "rates"}, "usage_formula.rates"),
        ({"type": "rates", "rates": {"input_tokens": "x"}}, "usage_formula.rates.input_tokens"),
        ({"type": "rates", "rates": {"input_tokens": "1E+1"}}, "usage_formula.rates.input_tokens"),
        ({"type": "rates", "rates": {"input_tokens": 0.5}}, "usage_formula.rates.input_tokens"),
        ({"type": "rates", "rates": {"input_tokens": "0.0000000001"}}, "usage_formula.rates.input_tokens"),
        ({"type": "cost", "rates": {}}, "usage_formula.rates"),
    ]:
        response = api.patch("/api/v1/features/api_calls", {"usage_formula": bad}, key=tenant_a.key)
        assert response.status_code == 400, bad
        assert response.json()["error"]["param"] == param, (bad, response.json())
    assert Feature.objects.get(key="api_calls").usage_formula is None


def test_rates_make_units_of_the_dimensions_rounded_up_once(api, tenant_a, ai):
    formula(api, tenant_a.key, "tokens", RATES)
    first = usage(api, tenant_a.key, "e1", dimensions={"input_tokens": 1200, "output_tokens": 300})
    assert first.status_code == 201, first.json()
    body = first.json()
    # 1,200 × 0.001 + 300 × 0.004 = 2.4 → 3
    assert (body["quantity"], body["model"], body["dimensions"], body["cost"]) == (
        3,
        None,
        {"input_tokens": 1200, "output_tokens": 300},
        None,
    )
    # the model's own rates: 1,200 × 0.01 + 300 × 0.03 = 21
    big = usage(api, tenant_a.key, "e2", model="big", dimensions={"input_tokens": 1200, "output_tokens": 300})
    assert big.json()["quantity"] == 21
    # a model the formula doesn't name takes the default rates
    other = usage(api, tenant_a.key, "e3", model="small", dimensions={"output_tokens": 1})
    assert other.json()["quantity"] == 1
    again = usage(
        api, tenant_a.key, "e2", model="big", dimensions={"input_tokens": 1200, "output_tokens": 300}
    )
    assert again.status_code == 200
    assert again.json() == big.json()
    assert check(api, tenant_a.key, "u1", "tokens")["used"] == 25
    assert UsageCounter.objects.get().used == 25
    stored = UsageEvent.objects.get(event_id="e2")
    assert stored.dimensions == {
        "model": "big",
        "values": {"input_tokens": 1200, "output_tokens": 300},
    }
    assert stored.cost_micros is None


def test_cost_follows_the_cost_table_in_force_at_the_events_time_and_never_rewrites_history(
    api, tenant_a, ai
):
    with time_machine.travel(START, tick=False):
        formula(api, tenant_a.key, "ai_credits", COST)
        v1 = cost_table(api, tenant_a.key, {"gpt-4o": GPT})
        dims = {"input_tokens": 1200, "output_tokens": 300}
        first = usage(api, tenant_a.key, "c1", feature="ai_credits", model="gpt-4o", dimensions=dims)
        assert first.status_code == 201, first.json()
        # 1,200 × 2.5 + 300 × 10 = 6,000 µ$; × 1.5 = 9,000 µ$ = 9 units of 1,000 µ$
        assert (first.json()["quantity"], first.json()["cost"]) == (
            9,
            {"micros": 6000, "currency": "usd", "cost_table": v1["version"]},
        )
        doubled = {d: {"micros": r["micros"] * 2, "per": r["per"]} for d, r in GPT.items()}
        v2 = cost_table(api, tenant_a.key, {"gpt-4o": doubled}, starts_at=START + timedelta(minutes=10))
    with time_machine.travel(START + timedelta(minutes=11), tick=False):
        later = usage(api, tenant_a.key, "c2", feature="ai_credits", model="gpt-4o", dimensions=dims)
        assert (
            later.json()["quantity"],
            later.json()["cost"]["micros"],
            later.json()["cost"]["cost_table"],
        ) == (
            18,
            12000,
            v2["version"],
        )
        # An event stamped before v2 started is priced by v1, whenever it arrives.
        late = usage(
            api,
            tenant_a.key,
            "c3",
            feature="ai_credits",
            model="gpt-4o",
            dimensions={"output_tokens": 1},
            timestamp=(START + timedelta(minutes=5)).isoformat(),
        )
        # 1 × 10 µ$ = 10 µ$ × 1.5 = 15 µ$ → 1 unit
        assert (late.json()["quantity"], late.json()["cost"]) == (
            1,
            {"micros": 10, "currency": "usd", "cost_table": v1["version"]},
        )
        assert list(
            UsageEvent.objects.order_by("event_id").values_list("event_id", "quantity", "cost_micros")
        ) == [
            ("c1", 9, 6000),
            ("c2", 18, 12000),
            ("c3", 1, 10),
        ]
        assert check(api, tenant_a.key, "u1", "ai_credits")["used"] == 28
        # a new formula applies to what comes next only
        formula(api, tenant_a.key, "ai_credits", {"type": "cost", "markup": "1", "unit_micros": 1000})
        assert (
            usage(api, tenant_a.key, "c4", feature="ai_credits", model="gpt-4o", dimensions=dims).json()[
                "quantity"
            ]
            == 12
        )
        assert UsageEvent.objects.get(event_id="c1").quantity == 9


def test_dimensions_refused_record_nothing(api, tenant_a, ai):
    with time_machine.travel(START, tick=False):
        formula(api, tenant_a.key, "ai_credits", COST)
        formula(api, tenant_a.key, "tokens", {"type": "rates", "models": {"big": {"input_tokens": "1"}}})
        cost_table(api, tenant_a.key, {"gpt-4o": GPT})
        cases = [
            (
                {"feature": "api_calls", "dimensions": {"input_tokens": 1}},
                "feature_has_no_formula",
                "dimensions",
            ),
            (
                {
                    "feature": "ai_credits",
                    "model": "gpt-4o",
                    "quantity": 3,
                    "dimensions": {"input_tokens": 1},
                },
                "parameter_conflict",
                "quantity",
            ),
            (
                {"feature": "ai_credits", "model": "gpt-4o", "dimensions": {"images": 1}},
                "unknown_dimension",
                "dimensions.images",
            ),
            (
                {"feature": "ai_credits", "model": "claude", "dimensions": {"input_tokens": 1}},
                "model_not_priced",
                "model",
            ),
            ({"feature": "ai_credits", "dimensions": {"input_tokens": 1}}, "model_not_priced", "model"),
            (
                {"feature": "tokens", "model": "small", "dimensions": {"input_tokens": 1}},
                "model_not_priced",
                "model",
            ),
            (
                {"feature": "tokens", "model": "big", "dimensions": {"output_tokens": 1}},
                "unknown_dimension",
                "dimensions.output_tokens",
            ),
            ({"feature": "tokens", "model": "big"}, "parameter_missing", "dimensions"),
            (
                {"feature": "tokens", "model": "big", "dimensions": {"input_tokens": -1}},
                "invalid_parameter",
                "dimensions.input_tokens",
            ),
            ({"feature": "tokens", "model": "big", "dimensions": {}}, "invalid_parameter", "dimensions"),
        ]
        for fields, code, param in cases:
            response = usage(api, tenant_a.key, "x", **fields)
            assert response.status_code == 400, fields
            assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (code, param), (
                fields
            )
        batch = api.post(
            "/api/v1/usage/batch",
            {
                "events": [
                    {
                        "id": "b0",
                        "customer": "u1",
                        "feature": "tokens",
                        "model": "big",
                        "dimensions": {"input_tokens": 2},
                    },
                    {
                        "id": "b1",
                        "customer": "u1",
                        "feature": "ai_credits",
                        "model": "gpt-4o",
                        "dimensions": {"images": 1},
                    },
                ]
            },
            key=tenant_a.key,
        )
        assert batch.status_code == 400
        assert batch.json()["error"]["param"] == "events[1].dimensions.images"
        assert batch.json()["error"]["message"].startswith("events[1].dimensions.images: ")
        assert UsageEvent.objects.count() == 0
        assert UsageCounter.objects.count() == 0


def test_a_batch_prices_each_event_by_its_model(api, tenant_a, ai):
    with time_machine.travel(START, tick=False):
        formula(api, tenant_a.key, "ai_credits", COST)
        cost_table(
            api,
            tenant_a.key,
            {
                "gpt-4o": GPT,
                "gpt-4o-mini": {
                    "input_tokens": {"micros": 150_000, "per": 1_000_000},
                    "output_tokens": {"micros": 600_000, "per": 1_000_000},
                },
            },
        )
        events = [
            {
                "id": f"m{i}",
                "customer": "u1",
                "feature": "ai_credits",
                "model": model,
                "dimensions": {"input_tokens": 10_000, "output_tokens": 2_000},
            }
            for i, model in enumerate(["gpt-4o", "gpt-4o-mini", "gpt-4o"])
        ]
        response = api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key)
        assert response.json() == {"accepted": 3, "duplicates": 0}
        # gpt-4o: 25,000 + 20,000 = 45,000 µ$ × 1.5 = 67.5 → 68; mini: 1,500 + 1,200 = 2,700 × 1.5 = 4.05 → 5
        assert list(
            UsageEvent.objects.order_by("event_id").values_list("event_id", "quantity", "cost_micros")
        ) == [
            ("m0", 68, 45000),
            ("m1", 5, 2700),
            ("m2", 68, 45000),
        ]
        assert check(api, tenant_a.key, "u1", "ai_credits")["used"] == 141


def test_a_cost_formula_rounds_once_from_the_exact_cost(api, tenant_a, ai):
    """The units come from the exact cost; the cost stored is that cost rounded half up. Rounding the cost first
    and the units again let a small call go free (0.45 µ → 0 → 0 units) and billed a call twice as much
    (666.5 µ → 667 × 1.5 = 1,000.5 → 2 units)."""
    with time_machine.travel(START, tick=False):
        cost_table(
            api,
            tenant_a.key,
            {
                "mini": {"input_tokens": {"micros": 150_000, "per": 1_000_000}},
                "odd": {"output_tokens": {"micros": 1333, "per": 2}},
            },
        )
        formula(api, tenant_a.key, "ai_credits", {"type": "cost", "markup": "1.5", "unit_micros": 1})
        small = usage(
            api, tenant_a.key, "s1", feature="ai_credits", model="mini", dimensions={"input_tokens": 3}
        )
        # 3 × 0.15 = 0.45 µ$ (stored 0); × 1.5 = 0.675 → 1 unit
        assert (small.json()["quantity"], small.json()["cost"]["micros"]) == (1, 0)
        formula(api, tenant_a.key, "ai_credits", {"type": "cost", "markup": "1.5", "unit_micros": 1000})
        odd = usage(
            api, tenant_a.key, "s2", feature="ai_credits", model="odd", dimensions={"output_tokens": 1}
        )
        # 666.5 µ$ (stored 667); × 1.5 = 999.75 µ$ → 1 unit of 1,000
        assert (odd.json()["quantity"], odd.json()["cost"]["micros"]) == (1, 667)


def test_a_rates_formula_records_a_call_its_cost_table_cannot_price(api, tenant_a, ai):
    """A rates formula's units are its own; the cost table prices the call for the record only, so a dimension
    the table does not price leaves the event without a cost — it was refused."""
    with time_machine.travel(START, tick=False):
        cost_table(api, tenant_a.key, {"gpt-4o": GPT})
        formula(
            api,
            tenant_a.key,
            "tokens",
            {"type": "rates", "rates": {"input_tokens": "0.001", "cached_tokens": "0.0005"}},
        )
        dims = {"input_tokens": 1000, "cached_tokens": 2000}
        response = usage(api, tenant_a.key, "r1", model="gpt-4o", dimensions=dims)
        assert response.status_code == 201, response.json()
        assert (response.json()["quantity"], response.json()["cost"]) == (2, None)
        assert UsageEvent.objects.get(event_id="r1").dimensions == {"model": "gpt-4o", "values": dims}
        priced = usage(api, tenant_a.key, "r2", model="gpt-4o", dimensions={"input_tokens": 1000})
        assert (priced.json()["quantity"], priced.json()["cost"]) == (
            1,
            {"micros": 2500, "currency": "usd", "cost_table": 1},
        )


def test_a_retry_is_answered_whatever_changed_since(api, tenant_a, ai):
    """An event recorded once is not priced again when it is sent again: a formula removed since (or a cost table
    that no longer prices it) does not turn the retry, or a batch holding it, into a 400."""
    with time_machine.travel(START, tick=False):
        formula(api, tenant_a.key, "tokens", RATES)
        first = usage(api, tenant_a.key, "t1", model="big", dimensions={"input_tokens": 100})
        assert first.json()["quantity"] == 1
        formula(api, tenant_a.key, "tokens", None)
        again = usage(api, tenant_a.key, "t1", model="big", dimensions={"input_tokens": 100})
        assert again.status_code == 200, again.json()
        assert again.json() == first.json()
        batch = api.post(
            "/api/v1/usage/batch",
            {
                "events": [
                    {
                        "id": "t1",
                        "customer": "u1",
                        "feature": "tokens",
                        "model": "big",
                        "dimensions": {"input_tokens": 100},
                    },
                    {"id": "t2", "customer": "u1", "feature": "tokens", "quantity": 4},
                ]
            },
            key=tenant_a.key,
        )
        assert batch.json() == {"accepted": 1, "duplicates": 1}
        assert check(api, tenant_a.key, "u1", "tokens")["used"] == 5


def test_units_or_a_cost_past_what_an_event_records_are_refused(api, tenant_a, ai):
    with time_machine.travel(START, tick=False):
        cost_table(api, tenant_a.key, {"huge": {"seconds": {"micros": 10**15, "per": 1}}})
        formula(api, tenant_a.key, "ai_credits", {"type": "cost", "markup": "1", "unit_micros": 10**12})
        formula(api, tenant_a.key, "tokens", {"type": "rates", "rates": {"seconds": "999999999"}})
        for feature_key, model in (("ai_credits", "huge"), ("tokens", None)):
            fields = {"feature": feature_key, "dimensions": {"seconds": 10**12}}
            if model:
                fields["model"] = model
            response = usage(api, tenant_a.key, f"big-{feature_key}", **fields)
            assert response.status_code == 400, response.json()
            assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
                "usage_too_large",
                "dimensions",
            )
        assert UsageEvent.objects.count() == 0


def test_a_name_or_decimal_with_a_trailing_newline_is_refused(api, tenant_a, ai):
    formula(api, tenant_a.key, "tokens", RATES)
    response = usage(api, tenant_a.key, "n1", model="big\n", dimensions={"input_tokens": 100})
    assert (response.status_code, response.json()["error"]["param"]) == (400, "model")
    refused = api.patch(
        "/api/v1/features/ai_credits",
        {"usage_formula": {"type": "cost", "markup": "1.5\n"}},
        key=tenant_a.key,
    )
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "usage_formula.markup")
    assert UsageEvent.objects.count() == 0


def test_a_test_clocks_customer_is_priced_by_the_version_in_force_now(api, tenant_a, ai):
    """A customer on a test clock set in the past is stamped at the clock's time, before any cost table version
    (a version never starts in the past): the call is priced by the version in force at the real time."""
    from tests.entitlements.test_clock_time_judging import _clock_customer

    _clock_customer(api, tenant_a, "clocked")
    formula(api, tenant_a.key, "ai_credits", COST)
    cost_table(api, tenant_a.key, {"gpt-4o": GPT})
    response = usage(
        api,
        tenant_a.key,
        "k1",
        customer="clocked",
        feature="ai_credits",
        model="gpt-4o",
        dimensions={"input_tokens": 1200, "output_tokens": 300},
    )
    assert response.status_code == 201, response.json()
    assert (response.json()["quantity"], response.json()["cost"]["micros"]) == (9, 6000)
