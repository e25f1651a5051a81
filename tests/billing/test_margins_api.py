"""`GET /api/v1/margins` (#54 point 4), through the HTTP API with usage recorded as tenants record it: the rows'
shape and order, the window, the grouping, the customer filter, the limit, the isolation between projects, and
every refusal answering before anything is computed. What the money attributes to (overage at the price's terms,
credits at their paid value) is the service's to test (`billing.services.margins`); one purchased-credits case here
shows the billed fields as the API renders them."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from catalog.models import Feature
from tests.entitlements.helpers import customer, feature, hand, paid_payment, product
from tests.entitlements.test_usage_dimensions import COST, GPT, cost_table, formula, usage

MARGINS = "/api/v1/margins"
FEBRUARY = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MINI = {
    "input_tokens": {"micros": 150_000, "per": 1_000_000},
    "output_tokens": {"micros": 600_000, "per": 1_000_000},
}
FIELDS = [
    "object",
    "period",
    "currency",
    "customer",
    "feature",
    "model",
    "calls",
    "units",
    "cost_micros",
    "billed_micros",
    "overage_micros",
    "credits_micros",
    "credits_burned",
    "margin_micros",
    "margin_bps",
]


def row(
    period: str, currency: str, customer: Any, feature: Any, model: Any, calls: int, units: int, cost: int
):
    """A row of usage that billed nothing: its margin is the cost, lost."""
    return {
        "object": "margin",
        "period": period,
        "currency": currency,
        "customer": customer,
        "feature": feature,
        "model": model,
        "calls": calls,
        "units": units,
        "cost_micros": cost,
        "billed_micros": 0,
        "overage_micros": 0,
        "credits_micros": 0,
        "credits_burned": 0,
        "margin_micros": -cost,
        "margin_bps": None,
    }


def call(api, key, event_id, customer, model, input_tokens, output_tokens):
    dimensions = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    answer = usage(api, key, event_id, feature="ai", customer=customer, model=model, dimensions=dimensions)
    assert answer.status_code == 201, answer.json()
    return answer.json()


def margins(api, key, **params):
    with time_machine.travel(NOW, tick=False):
        return api.get(MARGINS, key=key, json_body=params or None)


def listed(api, key, **params) -> dict[str, Any]:
    response = margins(api, key, **params)
    assert response.status_code == 200, response.json()
    return dict(response.json())


@pytest.fixture
def recorded(api, tenant_a):
    """Tenant A's AI feature (the call's cost × 1.5, a unit per 0.001 USD) and plain `api_calls`, on the free
    plan; a call in February, and in March (NOW) three calls of u1, one of u2 and u1's 5 api calls."""
    p = tenant_a.project
    ai = feature(p, "ai", Feature.Type.METERED)
    calls = feature(p, "api_calls", Feature.Type.METERED)
    product(p, "free", {ai: 1000, calls: 100})
    p.default_product = "free"
    p.save()
    with time_machine.travel(FEBRUARY, tick=False):
        formula(api, tenant_a.key, "ai", COST)
        cost_table(api, tenant_a.key, {"gpt-4o": GPT, "gpt-4o-mini": MINI})
    with time_machine.travel(FEBRUARY + timedelta(days=19), tick=False):
        # 1,000 input tokens at 2.50 USD a million: 2,500 µ$ → 4 units
        assert call(api, tenant_a.key, "feb-1", "u1", "gpt-4o", 1000, 0)["cost"]["micros"] == 2500
    with time_machine.travel(NOW - timedelta(hours=2), tick=False):
        # 1,200 × 2.5 + 300 × 10 = 6,000 µ$ → 9 units; 2,500 µ$ → 4 units
        assert call(api, tenant_a.key, "mar-1", "u1", "gpt-4o", 1200, 300)["quantity"] == 9
        assert call(api, tenant_a.key, "mar-2", "u1", "gpt-4o", 1000, 0)["quantity"] == 4
        # 10,000 × 0.15 + 1,000 × 0.60 = 2,100 µ$ → 4 units
        assert call(api, tenant_a.key, "mar-3", "u1", "gpt-4o-mini", 10000, 1000)["cost"]["micros"] == 2100
        # 400 × 2.5 + 100 × 10 = 2,000 µ$ → 3 units
        assert call(api, tenant_a.key, "mar-4", "u2", "gpt-4o", 400, 100)["quantity"] == 3
        plain = usage(api, tenant_a.key, "mar-5", feature="api_calls", customer="u1", quantity=5)
        assert plain.status_code == 201, plain.json()
    return p


def test_the_current_month_by_customer_feature_and_model_least_profitable_first(api, tenant_a, recorded):
    body = listed(api, tenant_a.key)
    assert list(body) == ["object", "data", "has_more"]
    assert (body["object"], body["has_more"]) == ("list", False)
    assert [list(answer) for answer in body["data"]] == [FIELDS] * 4
    # February's call is outside the default window (March 1st to now)
    assert body["data"] == [
        row("2026-03", "usd", "u1", "ai", "gpt-4o", 2, 13, 8500),
        row("2026-03", "usd", "u1", "ai", "gpt-4o-mini", 1, 4, 2100),
        row("2026-03", "usd", "u2", "ai", "gpt-4o", 1, 3, 2000),
        # usage that cost and billed no money: no currency, no model
        row("2026-03", "", "u1", "api_calls", "", 1, 5, 0),
    ]


def test_a_window_of_dates_or_times_reports_each_month_apart(api, tenant_a, recorded):
    months = listed(api, tenant_a.key, **{"from": "2026-02-01", "to": "2026-04-01", "group_by": "model"})
    assert months["data"] == [
        row("2026-03", "usd", None, None, "gpt-4o", 3, 16, 10500),
        row("2026-02", "usd", None, None, "gpt-4o", 1, 4, 2500),
        row("2026-03", "usd", None, None, "gpt-4o-mini", 1, 4, 2100),
        row("2026-03", "", None, None, "", 1, 5, 0),
    ]
    # `to` alone: from the first day of its month (the month before, for a month's first instant)
    february = listed(api, tenant_a.key, to="2026-03-01T00:00:00Z", group_by="customer")
    assert february["data"] == [row("2026-02", "usd", "u1", None, None, 1, 4, 2500)]
    # [from, to): an offset is moved to UTC; the calls at 10:00 UTC are in, the api call at 10:00 too
    edge = listed(
        api, tenant_a.key, **{"from": "2026-03-10T11:00:00+01:00", "to": "2026-03-10T10:00:00.000001Z"}
    )
    assert [(r["customer"], r["model"], r["calls"]) for r in edge["data"]] == [
        ("u1", "gpt-4o", 2),
        ("u1", "gpt-4o-mini", 1),
        ("u2", "gpt-4o", 1),
        ("u1", "", 1),
    ]
    assert listed(api, tenant_a.key, **{"from": "2026-03-10T10:00:00.000001Z"})["data"] == []
    assert listed(api, tenant_a.key, **{"from": "2026-01-01", "to": "2026-02-01"})["data"] == []


def test_the_groups_asked_for_in_any_order_and_none_at_all(api, tenant_a, recorded):
    by_feature = listed(api, tenant_a.key, group_by="feature,customer")["data"]
    assert by_feature == [
        row("2026-03", "usd", "u1", "ai", None, 3, 17, 10600),
        row("2026-03", "usd", "u2", "ai", None, 1, 3, 2000),
        row("2026-03", "", "u1", "api_calls", None, 1, 5, 0),
    ]
    assert listed(api, tenant_a.key, group_by=" model , model")["data"][0] == row(
        "2026-03", "usd", None, None, "gpt-4o", 3, 16, 10500
    )
    # no group: a row per month and currency
    assert listed(api, tenant_a.key, group_by="")["data"] == [
        row("2026-03", "usd", None, None, None, 4, 20, 12600),
        row("2026-03", "", None, None, None, 1, 5, 0),
    ]


def test_one_customers_rows_and_the_first_rows_only(api, tenant_a, recorded):
    assert listed(api, tenant_a.key, customer="u2")["data"] == [
        row("2026-03", "usd", "u2", "ai", "gpt-4o", 1, 3, 2000)
    ]
    assert [r["model"] for r in listed(api, tenant_a.key, customer="u1")["data"]] == [
        "gpt-4o",
        "gpt-4o-mini",
        "",
    ]
    first = listed(api, tenant_a.key, limit=1)
    assert (first["data"], first["has_more"]) == (
        [row("2026-03", "usd", "u1", "ai", "gpt-4o", 2, 13, 8500)],
        True,
    )
    assert listed(api, tenant_a.key, limit=3)["has_more"] is True
    assert listed(api, tenant_a.key, limit=4)["has_more"] is False
    assert len(listed(api, tenant_a.key, limit=1000)["data"]) == 4


def test_another_project_sees_only_its_own_usage(api, tenant_a, tenant_b, recorded):
    p = tenant_b.project
    plain = feature(p, "api_calls", Feature.Type.METERED)
    product(p, "free", {plain: 100})
    p.default_product = "free"
    p.save()
    with time_machine.travel(NOW - timedelta(hours=1), tick=False):
        own = usage(api, tenant_b.key, "mar-1", feature="api_calls", customer="b1", quantity=7)
        assert own.status_code == 201, own.json()
    assert listed(api, tenant_b.key)["data"] == [row("2026-03", "", "b1", "api_calls", "", 1, 7, 0)]
    # u1 is tenant A's customer: unknown to B, as if it did not exist
    for key, external_id in ((tenant_b.key, "u1"), (tenant_a.key, "b1"), (tenant_a.key, "nobody")):
        response = margins(api, key, customer=external_id)
        assert response.status_code == 404, response.json()
        assert response.json()["error"] == {
            "type": "not_found",
            "code": "resource_missing",
            "message": f"No such customer: {external_id!r}.",
            "param": "customer",
        }
    assert len(listed(api, tenant_a.key)["data"]) == 4


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"from": "yesterday"}, "invalid_parameter", "from"),
        ({"to": "2026-13-01"}, "invalid_parameter", "to"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "invalid_range", "to"),
        ({"from": "2026-03-01", "to": "2026-03-01T00:00:00Z"}, "invalid_range", "to"),
        ({"from": "2026-03-11"}, "invalid_range", "to"),  # after now, the default end
        ({"from": "2025-03-01", "to": "2026-03-02T00:00:00.000001Z"}, "invalid_range", "from"),  # > 366 days
        ({"group_by": "customer,plan"}, "invalid_parameter", "group_by"),
        ({"group_by": "Model"}, "invalid_parameter", "group_by"),
        ({"limit": "0"}, "invalid_limit", "limit"),
        ({"limit": "1001"}, "invalid_limit", "limit"),
        ({"limit": "ten"}, "invalid_limit", "limit"),
        ({"customer": "u" * 256}, "invalid_parameter", "customer"),
        ({"custmer": "u1"}, "unknown_parameter", "custmer"),
        ({"starting_after": "u1"}, "unknown_parameter", "starting_after"),
    ],
)
def test_a_bad_parameter_is_refused_before_anything_is_read(
    api, tenant_a, recorded, monkeypatch, params, code, param
):
    def not_reached(**kwargs: Any) -> None:
        raise AssertionError("the report was made")

    monkeypatch.setattr("billing.apis.margins.margins_report", not_reached)
    monkeypatch.setattr("billing.apis.margins.customer_get", not_reached)
    response = margins(api, tenant_a.key, **params)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)


def test_an_unknown_customer_is_looked_up_only_after_the_parameters(api, tenant_a, recorded, monkeypatch):
    monkeypatch.setattr(
        "billing.apis.margins.margins_report", lambda **kwargs: pytest.fail("the report was made")
    )
    assert margins(api, tenant_a.key, customer="nobody").status_code == 404
    assert margins(api, tenant_a.key, customer="nobody", limit=0).json()["error"]["code"] == "invalid_limit"


def test_only_a_project_key_reads_margins(api, tenant_a, platform_key, recorded):
    response = margins(api, None)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "missing_api_key")
    response = margins(api, platform_key)
    assert (response.status_code, response.json()["error"]["type"]) == (403, "permission_error")
    response = api.post(MARGINS, {}, key=tenant_a.key)
    assert (response.status_code, response.json()["error"]["code"]) == (405, "method_not_allowed")


def test_credits_bought_and_burned_are_billed_at_what_they_were_paid(
    api, tenant_a, django_capture_on_commit_callbacks
):
    p = tenant_a.project
    credits = feature(p, "ai_credits", Feature.Type.CREDITS)
    pack = product(p, "credit-pack", {credits: 1000})
    with time_machine.travel(NOW - timedelta(days=1), tick=False):
        # 1,000 credits for 15.00 USD: 15,000 µ$ each
        payment = paid_payment(customer(p, "u3"), pack)
        assert (payment.items[0]["unit_amount"], payment.currency) == (1500, "usd")
        with django_capture_on_commit_callbacks(execute=True):
            hand(payment=payment)
        burned = api.post(
            "/api/v1/entitlements/consume",
            {"id": "c-1", "customer": "u3", "feature": "ai_credits", "quantity": 10},
            key=tenant_a.key,
        )
        assert burned.json()["allowed"] is True, burned.json()
    assert listed(api, tenant_a.key)["data"] == [
        {
            "object": "margin",
            "period": "2026-03",
            "currency": "usd",
            "customer": "u3",
            "feature": "ai_credits",
            "model": "",
            "calls": 1,
            "units": 10,
            "cost_micros": 0,
            "billed_micros": 150_000,
            "overage_micros": 0,
            "credits_micros": 150_000,
            "credits_burned": 10,
            "margin_micros": 150_000,
            "margin_bps": 10_000,
        }
    ]
