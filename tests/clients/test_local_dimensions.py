"""Model calls judged from memory (#54 point 3) on a live server: `LocalEntitlements.check` with `model` and
`dimensions` answers exactly what the server's check answers for them — a cost formula by the cost table version
in force, on both sides of a version's start, and a rates formula with a model's own rates — with no request,
and asks the server what the snapshot cannot price; `LeasedQuota` takes a call's units from its lease and reports
the call, so its usage event carries its dimensions and cost, and a call the server priced past what the hold
had left (a version started in between) is recorded as usage, counted once."""

import random
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest
from tollgate_client import InvalidRequestError, Tollgate
from tollgate_client._formulas import formula_of, tables_of, units
from tollgate_client.leases import LeasedQuota
from tollgate_client.local import LocalEntitlements

from catalog.formulas import formula_parse
from core.errors import InvalidRequest
from costs.models import CostTable
from entitlements.models import Hold, UsageCounter, UsageEvent
from entitlements.services.usage_pricing import UsagePricer

FAST = {"poll_interval": 0.05, "stale_after": 5.0}
GPT = {
    "input_tokens": {"micros": 2_500_000, "per": 1_000_000},
    "output_tokens": {"micros": 10_000_000, "per": 1_000_000},
}
ODD = {"input_tokens": {"micros": 3, "per": 7}, "output_tokens": {"micros": 11, "per": 3}}
RATES = {
    "type": "rates",
    "rates": {"input_tokens": "0.001", "output_tokens": "0.004"},
    "models": {"big": {"input_tokens": "0.01", "output_tokens": "0.03"}},
}
CALL = {"input_tokens": 1200, "output_tokens": 300}


class Counting(httpx.Client):
    """An httpx client that counts the requests it sends, by path."""

    def __init__(self) -> None:
        super().__init__(timeout=10)
        self.paths: list[str] = []

    def send(self, request: httpx.Request, **kwargs):  # type: ignore[no-untyped-def, override]
        self.paths.append(request.url.path)
        return super().send(request, **kwargs)


@pytest.fixture
def counted(live_server, tenant_a):
    http = Counting()
    with Tollgate(tenant_a.key, live_server.url, http_client=http) as client:
        yield client, http
    http.close()


@pytest.fixture
def ai(tollgate, live_server, tenant_a, platform_key):
    """`assistant` follows the cost (× 1.5, a unit per 1,000 µ$), `tokens` has rates and `big`'s own; the
    default product gives 100 of each."""
    tollgate.features.create(
        key="assistant",
        name="Assistant",
        type="metered",
        usage_formula={"type": "cost", "markup": "1.5", "unit_micros": 1000},
    )
    tollgate.features.create(key="tokens", name="Tokens", type="metered", usage_formula=RATES)
    tollgate.products.create(key="free", name="Free", features={"assistant": 100, "tokens": 100})
    with Tollgate(platform_key, live_server.url, timeout=10) as platform:
        platform.projects.update(tenant_a.project.pk, default_product="free")


def server_check(tollgate, feature, model, dimensions, customer="user-1"):
    params = {
        "customer": customer,
        "feature": feature,
        **{f"dimensions[{k}]": v for k, v in dimensions.items()},
    }
    if model is not None:
        params["model"] = model
    return tollgate.request("GET", "/entitlements/check", params=params)


def doubled(models):
    return {
        model: {name: {"micros": rate["micros"] * 2, "per": rate["per"]} for name, rate in rates.items()}
        for model, rates in models.items()
    }


@pytest.mark.django_db(transaction=True)
def test_a_cost_formula_is_judged_as_the_server_judges_it_on_both_sides_of_a_versions_start(
    counted, tollgate, ai
):
    client, http = counted
    tollgate.cost_tables.create(currency="usd", models={"gpt-4o": GPT, "odd": ODD})
    # The later version starts far enough ahead that a loaded machine finishes the checks before it.
    start = datetime.now(UTC) + timedelta(seconds=8)
    tollgate.cost_tables.create(currency="usd", models=doubled({"gpt-4o": GPT, "odd": ODD}), starts_at=start)
    tollgate.usage.record(
        id="call-0", customer="user-1", feature="assistant", model="gpt-4o", dimensions=CALL
    )
    calls = [
        ("gpt-4o", CALL),
        ("gpt-4o", {"input_tokens": 1}),
        ("odd", {"input_tokens": 1000, "output_tokens": 7}),
        ("odd", {"input_tokens": 0}),
        ("gpt-4o", {"input_tokens": 10_000, "output_tokens": 8000}),  # past the limit
    ]
    with LocalEntitlements(client, **FAST) as local:
        before = [
            local.check(customer="user-1", feature="assistant", model=m, dimensions=d) for m, d in calls
        ]
        assert "/api/v1/entitlements/check" not in http.paths
        assert [answer.raw for answer in before] == [
            server_check(tollgate, "assistant", m, d) for m, d in calls
        ]
        assert datetime.now(UTC) < start, "the checks took longer than the window before the version's start"
        # 6,000 µ$ × 1.5 = 9; 2.5 µ$ × 1.5 = 3.75 µ$ → 1; (3,000/7 + 77/3) µ$ × 1.5 = 681.36… µ$ → 1; 0;
        # 105,000 µ$ × 1.5 = 157.5 → 158
        assert [(a.quantity, a.allowed, a.remaining) for a in before] == [
            (9, True, 91),
            (1, True, 91),
            (1, True, 91),
            (0, True, 91),
            (158, False, 91),
        ]
        time.sleep(max((start - datetime.now(UTC)).total_seconds(), 0) + 0.3)
        http.paths.clear()
        after = [local.check(customer="user-1", feature="assistant", model=m, dimensions=d) for m, d in calls]
        assert "/api/v1/entitlements/check" not in http.paths
        assert [answer.raw for answer in after] == [
            server_check(tollgate, "assistant", m, d) for m, d in calls
        ]
        assert [a.quantity for a in after] == [18, 1, 2, 0, 315]
        assert "/api/v1/entitlements/snapshot" not in http.paths  # the version boundary needs no new snapshot

        # What the snapshot cannot price is the server's to refuse, with its error.
        with pytest.raises(InvalidRequestError) as refused:
            local.check(customer="user-1", feature="assistant", model="claude", dimensions=CALL)
        assert (refused.value.code, refused.value.param) == ("model_not_priced", "model")
        with pytest.raises(InvalidRequestError) as refused:
            local.check(customer="user-1", feature="assistant", model="gpt-4o", dimensions={"images": 1})
        assert (refused.value.code, refused.value.param) == ("unknown_dimension", "dimensions.images")
        with pytest.raises(InvalidRequestError) as refused:
            local.check(customer="user-1", feature="assistant", quantity=2, model="gpt-4o", dimensions=CALL)
        assert refused.value.code == "parameter_conflict"
        assert http.paths.count("/api/v1/entitlements/check") == 3  # those three only


@pytest.mark.django_db(transaction=True)
def test_rates_with_a_models_own_and_a_new_version_dropping_the_snapshot(counted, tollgate, ai):
    client, http = counted
    calls = [
        (None, CALL),  # 1.2 + 1.2 = 2.4 → 3
        ("big", CALL),  # 12 + 9 = 21
        ("small", {"output_tokens": 1}),  # a model without rates of its own: the default ones, 0.004 → 1
        ("big", {"input_tokens": 9000}),  # 90: fits the 100
        ("big", {"input_tokens": 10_001}),  # 100.01 → 101: does not
    ]
    with LocalEntitlements(client, **FAST) as local:
        answers = [local.check(customer="user-2", feature="tokens", model=m, dimensions=d) for m, d in calls]
        assert "/api/v1/entitlements/check" not in http.paths
        assert [a.raw for a in answers] == [
            server_check(tollgate, "tokens", m, d, customer="user-2") for m, d in calls
        ]
        assert [(a.quantity, a.allowed) for a in answers] == [
            (3, True),
            (21, True),
            (1, True),
            (90, True),
            (101, False),
        ]
        # A plain check of the feature answers as it did: no `quantity`.
        assert "quantity" not in local.check(customer="user-2", feature="tokens").raw
        with pytest.raises(InvalidRequestError) as refused:
            local.check(customer="user-2", feature="tokens", model="big", dimensions={"images": 2})
        assert (refused.value.code, refused.value.param) == ("unknown_dimension", "dimensions.images")

        snapshots = http.paths.count("/api/v1/entitlements/snapshot")
        tollgate.cost_tables.create(currency="usd", models={"gpt-4o": GPT})
        # The new version moves the project's answers: every snapshot is dropped, the next check fetches one.
        deadline = time.monotonic() + 5
        while http.paths.count("/api/v1/entitlements/snapshot") == snapshots:
            assert time.monotonic() < deadline
            local.check(customer="user-2", feature="tokens", model="big", dimensions=CALL)
            time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_a_lease_reports_each_call_with_its_dimensions_and_cost(tollgate, ai):
    tollgate.cost_tables.create(currency="usd", models={"gpt-4o": GPT, "odd": ODD})
    quota = LeasedQuota(tollgate, customer="user-3", feature="assistant", lease=40, flush_every=60)
    calls = [
        ("c1", "gpt-4o", CALL),  # 6,000 µ$ → 9 units
        ("c2", "odd", {"input_tokens": 1000, "output_tokens": 7}),  # 454.238… µ$ → 1 unit, 454 µ$
        ("c3", "gpt-4o", {"output_tokens": 1333}),  # 13,330 µ$ → 19.995 → 20 units
    ]
    assert [quota.consume(id=i, model=m, dimensions=d) for i, m, d in calls] == [True, True, True]
    assert quota.left == 40 - 30
    assert quota.consume(id="c1", model="gpt-4o", dimensions=CALL) is True  # the same id: nothing more
    assert quota.consume(id="c4", quantity=3) is True  # a plain use of the same lease
    assert (
        quota.consume(id="c5", model="gpt-4o", dimensions={"input_tokens": 4000}) is True
    )  # 15: a new lease
    with pytest.raises(InvalidRequestError) as refused:
        quota.consume(id="c6", model="gpt-4o", dimensions={"images": 1})
    assert refused.value.code == "unknown_dimension"
    quota.close()
    assert quota.lost == 0
    events = {
        event_id: (quantity, dimensions, cost)
        for event_id, quantity, dimensions, cost in UsageEvent.objects.values_list(
            "event_id", "quantity", "dimensions", "cost_micros"
        )
    }
    assert events == {
        "c1": (9, {"model": "gpt-4o", "values": CALL, "cost_table": 1, "currency": "usd"}, 6000),
        "c2": (
            1,
            {
                "model": "odd",
                "values": {"input_tokens": 1000, "output_tokens": 7},
                "cost_table": 1,
                "currency": "usd",
            },
            454,
        ),
        "c3": (
            20,
            {"model": "gpt-4o", "values": {"output_tokens": 1333}, "cost_table": 1, "currency": "usd"},
            13330,
        ),
        "c4": (3, None, None),
        "c5": (
            15,
            {"model": "gpt-4o", "values": {"input_tokens": 4000}, "cost_table": 1, "currency": "usd"},
            10000,
        ),
    }
    assert UsageCounter.objects.values_list("used", "held").get() == (9 + 1 + 20 + 3 + 15, 0)
    assert sum(Hold.objects.values_list("consumed", flat=True)) == 48
    assert set(Hold.objects.values_list("status", flat=True)) == {"released"}


@pytest.mark.django_db(transaction=True)
def test_a_call_priced_past_the_hold_after_a_versions_start_is_recorded_as_usage_once(tollgate, ai):
    tollgate.cost_tables.create(currency="usd", models={"gpt-4o": GPT})
    start = datetime.now(UTC) + timedelta(seconds=6)  # far enough ahead for a loaded machine's lease
    tollgate.cost_tables.create(currency="usd", models=doubled({"gpt-4o": GPT}), starts_at=start)
    quota = LeasedQuota(tollgate, customer="user-4", feature="assistant", lease=9, flush_every=60)
    assert quota.consume(id="v1", model="gpt-4o", dimensions=CALL) is True  # 9 units by version 1: the lease
    assert datetime.now(UTC) < start, "the lease took longer than the window before the version's start"
    assert quota.left == 0
    time.sleep(max((start - datetime.now(UTC)).total_seconds(), 0) + 0.3)
    quota.flush()  # reported after version 2 started: 18 units, past the hold's 9
    quota.flush()
    quota.close()
    assert quota.lost == 0
    assert list(UsageEvent.objects.values_list("event_id", "quantity", "cost_micros", "dimensions")) == [
        ("v1", 18, 12000, {"model": "gpt-4o", "values": CALL, "cost_table": 2, "currency": "usd"})
    ]
    assert UsageCounter.objects.values_list("used", "held").get() == (18, 0)
    assert list(Hold.objects.values_list("consumed", "status")) == [(0, "released")]


@pytest.mark.django_db
@pytest.mark.parametrize("seed", range(4))
def test_the_clients_arithmetic_is_the_servers_for_random_formulas_tables_and_calls(seed, tenant_a):
    """`tollgate_client._formulas.units` against the server's `UsagePricer` on the same cost tables: the same
    units, or None exactly where the server refuses the call."""
    rng = random.Random(seed)

    def decimal(places: int) -> str:
        whole = rng.choice([0, 0, 1, 2, 7, 999_999_999])
        fraction = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, places)))
        return f"{whole}.{fraction}" if fraction else str(whole)

    names = ["input_tokens", "output_tokens", "images"]
    models = ["gpt-4o", "mini", "big"]
    at = datetime(2026, 6, 1, tzinfo=UTC)
    for version in (1, 2, 3):
        CostTable.objects.create(
            project=tenant_a.project,
            version=version,
            currency="usd",
            starts_at=at + timedelta(hours=version - 2),
            models={
                model: {
                    name: {
                        "micros": rng.choice([0, 1, 3, 2_500_000, 10**15]),
                        "per": rng.choice([1, 3, 7, 10**6]),
                    }
                    for name in names[:2]
                }
                for model in rng.sample(models, 2)
            },
        )
    tables = tables_of(
        [
            {"version": version, "starts_at": starts_at.timestamp(), "models": stored}
            for version, starts_at, stored in CostTable.objects.values_list("version", "starts_at", "models")
        ]
    )
    for _ in range(200):
        if rng.random() < 0.5:
            raw = {"type": "cost", "markup": decimal(6), "unit_micros": rng.choice([1, 7, 1000, 10**12])}
        else:
            raw = {
                "type": "rates",
                "rates": {n: decimal(9) for n in rng.sample(names, 2)} if rng.random() < 0.7 else None,
                "models": {m: {n: decimal(9) for n in rng.sample(names, 2)} for m in rng.sample(models, 1)},
            }
        formula = formula_parse(raw)
        pricer = UsagePricer(tenant_a.project, {"f": SimpleNamespace(usage_formula=formula)})  # type: ignore[dict-item]
        for _ in range(5):
            model = rng.choice([*models, None])
            dims = {n: rng.choice([0, 1, 7, 1200, 10**12]) for n in rng.sample(names, rng.randint(1, 3))}
            when = at + timedelta(hours=rng.choice([-3, -1, 0, 1, 2]), seconds=rng.choice([-1, 0, 1]))
            try:
                expected = pricer.price(feature="f", model=model, dimensions=dims, at=when)[0]
            except InvalidRequest:
                expected = None
            made = units(formula_of(formula), tables, model=model, dimensions=dims, at=when.timestamp())
            assert made == expected, (raw, model, dims, when)
