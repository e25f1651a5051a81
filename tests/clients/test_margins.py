"""The margins report through the Python client, on a live server: model calls priced by the cost table, the rows
typed, grouped and filtered as asked, the first rows only (one page: nothing follows), and the API's refusals as the
client's errors."""

from datetime import UTC, date, datetime, timedelta

import pytest
from tollgate_client import NotFoundError, Tollgate
from tollgate_client.errors import InvalidRequestError
from tollgate_client.resources.margins import MarginPage
from tollgate_client.types import Margin

pytestmark = pytest.mark.django_db(transaction=True)

GPT = {
    "input_tokens": {"micros": 2_500_000, "per": 1_000_000},
    "output_tokens": {"micros": 10_000_000, "per": 1_000_000},
}


@pytest.fixture
def calls(tollgate, live_server, tenant_a, platform_key):
    """Two customers' gpt-4o calls (the cost × 1.5, a unit per 0.001 USD), and one uncosted api call."""
    tollgate.cost_tables.create(currency="usd", models={"gpt-4o": GPT, "gpt-4o-mini": GPT})
    formula = {"type": "cost", "markup": "1.5", "unit_micros": 1000}
    tollgate.features.create(key="assistant", name="Assistant", type="metered", usage_formula=formula)
    tollgate.features.create(key="api_calls", name="API calls", type="metered")
    tollgate.products.create(key="free", name="Free", features={"assistant": 1000, "api_calls": 100})
    with Tollgate(platform_key, live_server.url, timeout=10) as platform:
        platform.projects.update(tenant_a.project.pk, default_product="free")
    for event_id, customer, model, tokens in [
        ("call-1", "user-1", "gpt-4o", {"input_tokens": 1200, "output_tokens": 300}),  # 6,000 µ$, 9 units
        ("call-2", "user-1", "gpt-4o-mini", {"input_tokens": 400, "output_tokens": 100}),  # 2,000 µ$, 3 units
        ("call-3", "user-2", "gpt-4o", {"input_tokens": 1000}),  # 2,500 µ$, 4 units
    ]:
        tollgate.usage.record(
            id=event_id, customer=customer, feature="assistant", model=model, dimensions=tokens
        )
    tollgate.usage.record(id="call-4", customer="user-2", feature="api_calls", quantity=5)


def test_the_report_typed_grouped_and_filtered(tollgate, calls):
    page = tollgate.margins.list()
    assert isinstance(page, MarginPage)
    assert all(isinstance(row, Margin) for row in page)
    month = datetime.now(UTC).strftime("%Y-%m")
    assert [
        (
            r.period,
            r.currency,
            r.customer,
            r.feature,
            r.model,
            r.calls,
            r.units,
            r.cost_micros,
            r.margin_micros,
        )
        for r in page
    ] == [
        (month, "usd", "user-1", "assistant", "gpt-4o", 1, 9, 6000, -6000),
        (month, "usd", "user-2", "assistant", "gpt-4o", 1, 4, 2500, -2500),
        (month, "usd", "user-1", "assistant", "gpt-4o-mini", 1, 3, 2000, -2000),
        (month, "", "user-2", "api_calls", "", 1, 5, 0, 0),
    ]
    first = page.data[0]
    assert (first.object, first.billed_micros, first.overage_micros, first.credits_micros) == (
        "margin",
        0,
        0,
        0,
    )
    assert (first.credits_burned, first.margin_bps) == (0, None)
    assert page.has_more is False

    by_model = tollgate.margins.list(group_by=["model"], customer="user-1")
    assert [(r.customer, r.feature, r.model, r.cost_micros) for r in by_model] == [
        (None, None, "gpt-4o", 6000),
        (None, None, "gpt-4o-mini", 2000),
    ]
    totals = tollgate.margins.list(group_by=[])
    assert [(r.currency, r.customer, r.calls, r.cost_micros) for r in totals] == [
        ("usd", None, 3, 10500),
        ("", None, 1, 0),
    ]
    assert [r.feature for r in tollgate.margins.list(group_by="feature")] == ["assistant", "api_calls"]

    tomorrow = datetime.now(UTC) + timedelta(days=1)
    window = tollgate.margins.list(start=tomorrow - timedelta(days=2), end=tomorrow, group_by=["customer"])
    assert [(r.customer, r.currency, r.cost_micros) for r in window] == [
        ("user-1", "usd", 8000),
        ("user-2", "usd", 2500),
        ("user-2", "", 0),  # its api call: no money, a currency of its own
    ]
    assert len(tollgate.margins.list(start=date(2020, 1, 1), end="2020-02-01")) == 0


def test_the_first_rows_are_one_page(tollgate, calls):
    page = tollgate.margins.list(limit=2)
    assert ([r.cost_micros for r in page], page.has_more) == ([6000, 2500], True)
    assert page.next_page() is None
    assert [r.cost_micros for r in page.auto_paging_iter()] == [6000, 2500]  # no request for a next page
    assert page.raw["object"] == "list"


def test_refusals(tollgate, tollgate_b, calls):
    with pytest.raises(NotFoundError):
        tollgate.margins.list(customer="nobody")
    with pytest.raises(NotFoundError):
        tollgate_b.margins.list(customer="user-1")  # tenant A's customer
    assert len(tollgate_b.margins.list()) == 0
    with pytest.raises(InvalidRequestError) as refused:
        tollgate.margins.list(start="2026-03-02", end="2026-03-01")
    assert (refused.value.code, refused.value.param) == ("invalid_range", "to")
    with pytest.raises(InvalidRequestError) as refused:
        tollgate.margins.list(group_by=["plan"])
    assert (refused.value.code, refused.value.param) == ("invalid_parameter", "group_by")
    with pytest.raises(InvalidRequestError) as refused:
        tollgate.margins.list(limit=1001)
    assert refused.value.code == "invalid_limit"


def test_the_projects_margin_alert_is_set_and_cleared(live_server, tenant_a, platform_key):
    with Tollgate(platform_key, live_server.url, timeout=10) as platform:
        assert (
            platform.projects.update(tenant_a.project.pk, margin_alert_below_bps=-2500).margin_alert_below_bps
            == -2500
        )
        # an update of something else leaves it
        assert platform.projects.update(tenant_a.project.pk, name="Alpha").margin_alert_below_bps == -2500
        assert (
            platform.projects.update(tenant_a.project.pk, clear_margin_alert=True).margin_alert_below_bps
            is None
        )
        with pytest.raises(InvalidRequestError) as refused:
            platform.projects.update(tenant_a.project.pk, margin_alert_below_bps=10_001)
        assert refused.value.param == "margin_alert_below_bps"
    tenant_a.project.refresh_from_db()
    assert tenant_a.project.margin_alert_below_bps is None
