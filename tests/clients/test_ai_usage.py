"""AI usage priced by model and token through the Python client, on a live server: the project's cost table
(versions that apply from their start, never before), a feature whose units follow the cost (× a markup) and one
with per-dimension rates, usage events that give their model and tokens, and a credits waterfall whose credits
burned follow the model used."""

from datetime import UTC, datetime, timedelta

import pytest
from tollgate_client import Tollgate
from tollgate_client.errors import InvalidRequestError
from tollgate_client.types import CostTable, HoldCall, UsageCost, UsageEvent

from entitlements.models import UsageEvent as StoredEvent

pytestmark = pytest.mark.django_db(transaction=True)

GPT = {
    "input_tokens": {"micros": 2_500_000, "per": 1_000_000},
    "output_tokens": {"micros": 10_000_000, "per": 1_000_000},
}
MINI = {"input_tokens": 1, "output_tokens": {"micros": 3, "per": 5}}


def test_cost_tables_and_usage_priced_by_model(tollgate, live_server, tenant_a, platform_key):
    first = tollgate.cost_tables.create(currency="USD", models={"gpt-4o": GPT, "mini": MINI})
    assert isinstance(first, CostTable)
    assert (first.version, first.currency, first.current) == (1, "usd", True)
    assert first.models["mini"] == {
        "input_tokens": {"micros": 1, "per": 1},
        "output_tokens": {"micros": 3, "per": 5},
    }
    later = datetime.now(UTC) + timedelta(days=30)
    second = tollgate.cost_tables.create(currency="usd", models={"gpt-4o": GPT}, starts_at=later)
    assert (second.version, second.current) == (2, False)
    assert [t.version for t in tollgate.cost_tables.list().data] == [2, 1]
    assert tollgate.cost_tables.retrieve(first.id).version == 1
    with pytest.raises(InvalidRequestError) as refused:
        tollgate.cost_tables.create(
            currency="usd", models={"gpt-4o": GPT}, starts_at=later - timedelta(days=1)
        )
    assert refused.value.code == "starts_before_latest"
    assert [t.version for t in tollgate.cost_tables.list().data] == [2, 1]

    tollgate.features.create(
        key="assistant",
        name="Assistant",
        type="metered",
        usage_formula={"type": "cost", "markup": "2", "unit_micros": 1000},
    )
    tollgate.products.create(key="free", name="Free", features={"assistant": 1000})
    with Tollgate(platform_key, live_server.url, timeout=10) as platform:
        platform.projects.update(tenant_a.project.pk, default_product="free")
    call = tollgate.usage.record(
        id="call-1",
        customer="user-1",
        feature="assistant",
        model="gpt-4o",
        dimensions={"input_tokens": 1000, "output_tokens": 500},
    )
    assert isinstance(call, UsageEvent)
    assert isinstance(call.cost, UsageCost)
    # 1,000 × 2.5 + 500 × 10 = 7,500 µ$ × 2 = 15,000 µ$ = 15 units
    assert (call.quantity, call.model, call.cost.micros, call.cost.cost_table) == (15, "gpt-4o", 7500, 1)
    mini = tollgate.usage.record(
        id="call-2", customer="user-1", feature="assistant", model="mini", dimensions={"output_tokens": 2}
    )
    # 2 × 3/5 = 1.2 → 1 µ$ (half up); × 2 = 2 µ$ → 1 unit (rounded up once)
    assert (mini.quantity, mini.cost.micros) == (1, 1)
    assert tollgate.entitlements.check(customer="user-1", feature="assistant").used == 16
    asked = tollgate.entitlements.check(
        customer="user-1",
        feature="assistant",
        model="gpt-4o",
        dimensions={"input_tokens": 1000, "output_tokens": 500},
    )
    assert (asked.allowed, asked.quantity, asked.used) == (True, 15, 16)


def test_a_refused_batch_records_nothing(tollgate):
    tollgate.cost_tables.create(currency="usd", models={"gpt-4o": GPT})
    tollgate.features.create(
        key="assistant", name="Assistant", type="metered", usage_formula={"type": "cost", "markup": "1"}
    )
    with pytest.raises(InvalidRequestError) as refused:
        tollgate.usage.record_batch(
            events=[
                {
                    "id": "b-1",
                    "customer": "user-2",
                    "feature": "assistant",
                    "model": "gpt-4o",
                    "dimensions": {"input_tokens": 400},
                },
                {
                    "id": "b-2",
                    "customer": "user-2",
                    "feature": "assistant",
                    "model": "gpt-4o",
                    "dimensions": {"images": 1},
                },
            ]
        )
    assert (refused.value.code, refused.value.param) == ("unknown_dimension", "events[1].dimensions.images")
    assert StoredEvent.objects.count() == 0
    good = tollgate.usage.record_batch(
        events=[
            {
                "id": "b-1",
                "customer": "user-2",
                "feature": "assistant",
                "model": "gpt-4o",
                "dimensions": {"input_tokens": 400},
            },
        ]
    )
    assert (good.accepted, good.duplicates) == (1, 0)
    # 400 × 2.5 = 1,000 µ$ × 1, unit_micros 1: 1,000 units
    assert list(StoredEvent.objects.values_list("event_id", "quantity", "cost_micros")) == [
        ("b-1", 1000, 1000)
    ]


def test_a_model_call_held_by_its_estimate_and_confirmed_by_what_it_used(
    tollgate, live_server, tenant_a, platform_key
):
    tollgate.cost_tables.create(currency="usd", models={"gpt-4o": GPT})
    tollgate.features.create(
        key="assistant",
        name="Assistant",
        type="metered",
        usage_formula={"type": "cost", "markup": "1.5", "unit_micros": 1000},
    )
    tollgate.products.create(key="free", name="Free", features={"assistant": 30})
    with Tollgate(platform_key, live_server.url, timeout=10) as platform:
        platform.projects.update(tenant_a.project.pk, default_product="free")
    placed = tollgate.entitlements.holds.create(
        id="call-9",
        customer="user-1",
        feature="assistant",
        model="gpt-4o",
        dimensions={"input_tokens": 1200, "output_tokens": 800},
    )
    assert placed.hold is not None
    assert isinstance(placed.hold.estimate, HoldCall)
    # 1,200 × 2.5 + 800 × 10 = 11,000 µ$ × 1.5 = 16.5 → 17 units
    assert (placed.hold.quantity, placed.hold.estimate.units, placed.hold.estimate.cost) == (
        17,
        17,
        UsageCost(micros=11000, currency="usd", cost_table=1),
    )
    done = tollgate.entitlements.holds.confirm(
        "call-9", model="gpt-4o", dimensions={"input_tokens": 1180, "output_tokens": 2400}
    )
    # 2,950 + 24,000 = 26,950 µ$ × 1.5 → 41 units: the 17 held and 24 beyond them, past the limit of 30
    assert done.hold is not None
    assert done.hold.actual is not None
    assert (done.hold.confirmed, done.hold.overrun, done.hold.actual.units) == (17, 24, 41)
    assert sorted(StoredEvent.objects.values_list("quantity", "cost_micros")) == [(17, 26950), (24, None)]
    answer = tollgate.entitlements.check(customer="user-1", feature="assistant")
    assert (answer.used, answer.held, answer.allowed) == (41, 0, False)
    lease = tollgate.entitlements.holds.create(
        id="lease-9", customer="user-2", feature="assistant", quantity=20
    )
    assert lease.allowed
    reported = tollgate.entitlements.holds.report_usage(
        "lease-9",
        events=[
            {"id": "use-1", "model": "gpt-4o", "dimensions": {"input_tokens": 1000, "output_tokens": 100}},
            ("use-2", 2),
        ],
    )
    # use-1: 2,500 + 1,000 = 3,500 µ$ × 1.5 = 5,250 → 6 units
    assert (reported.accepted, reported.hold.consumed) == (2, 8)
    assert StoredEvent.objects.get(event_id="use-1").cost_micros == 3500
