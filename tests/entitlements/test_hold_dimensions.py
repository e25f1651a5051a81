"""A model call held, then confirmed, by its dimensions (#54 point 3): the estimate is held as the units the feature's
formula makes of it, the actual call's dimensions are confirmed (priced, stored with their cost on the usage event),
what the call used beyond the hold is recorded as usage of its own, and a lease's reports may give dimensions."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from catalog.models import Feature
from entitlements.models import Hold, UsageEvent
from tests.entitlements.helpers import check, customer, feature, product, subscribe
from tests.entitlements.test_credits_waterfall import _balance, _counter, _plan, grant
from tests.entitlements.test_usage_dimensions import COST, GPT, RATES, cost_table, formula

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
HOLDS = "/api/v1/entitlements/holds"
ESTIMATE = {"input_tokens": 1200, "output_tokens": 800}  # 3,000 + 8,000 = 11,000 µ$ × 1.5 → 17 units


@pytest.fixture
def ai(api, tenant_a):
    p = tenant_a.project
    burn = feature(p, "ai_credits", Feature.Type.METERED)
    tokens = feature(p, "tokens", Feature.Type.METERED)
    plain = feature(p, "api_calls", Feature.Type.METERED)
    product(p, "free", {burn: 30, tokens: 1000, plain: 100})
    p.default_product = "free"
    p.save()
    with time_machine.travel(START, tick=False):
        formula(api, tenant_a.key, "ai_credits", COST)
        cost_table(api, tenant_a.key, {"gpt-4o": GPT})
    return p


def place(api, key, hold_id, **fields):
    body = {"id": hold_id, "customer": "u1", "feature": "ai_credits", **fields}
    return api.post(HOLDS, body, key=key)


def confirm(api, key, hold_id, **fields):
    return api.post(f"{HOLDS}/{hold_id}/confirm", fields, key=key)


def events():
    return list(
        UsageEvent.objects.order_by("timestamp", "event_id").values_list(
            "event_id", "quantity", "cost_micros", "dimensions", "properties"
        )
    )


def test_an_estimate_is_held_and_a_smaller_call_confirmed_gives_the_rest_back(api, tenant_a, ai):
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        placed = place(api, tenant_a.key, "call-1", model="gpt-4o", dimensions=ESTIMATE)
        assert placed.status_code == 200, placed.json()
        body = placed.json()
        assert body["allowed"] is True
        assert (body["hold"]["quantity"], body["hold"]["estimate"], body["hold"]["actual"]) == (
            17,
            {
                "model": "gpt-4o",
                "dimensions": ESTIMATE,
                "units": 17,
                "cost": {"micros": 11000, "currency": "usd", "cost_table": 1},
            },
            None,
        )
        assert (body["entitlement"]["used"], body["entitlement"]["held"]) == (0, 17)
        # 1,180 × 2.5 + 400 × 10 = 6,950 µ$ × 1.5 = 10,425 → 11 units
        actual = {"input_tokens": 1180, "output_tokens": 400}
        confirmed = confirm(api, tenant_a.key, "call-1", model="gpt-4o", dimensions=actual)
        assert confirmed.status_code == 200, confirmed.json()
        hold = confirmed.json()["hold"]
        assert (hold["status"], hold["confirmed"], hold["overrun"], hold["actual"]) == (
            "confirmed",
            11,
            0,
            {
                "model": "gpt-4o",
                "dimensions": actual,
                "units": 11,
                "cost": {"micros": 6950, "currency": "usd", "cost_table": 1},
            },
        )
        created = Hold.objects.get()
        assert events() == [
            (
                created.pk,
                11,
                6950,
                {"model": "gpt-4o", "values": actual, "cost_table": 1, "currency": "usd"},
                {"hold": "call-1"},
            )
        ]
        answer = check(api, tenant_a.key, "u1", "ai_credits")
        assert (answer["used"], answer["held"]) == (11, 0)


def test_a_call_that_used_more_than_its_hold_is_recorded_whole_beyond_the_limit(api, tenant_a, ai):
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        assert place(api, tenant_a.key, "call-2", model="gpt-4o", dimensions=ESTIMATE).json()["allowed"]
        # 1,180 × 2.5 + 2,400 × 10 = 26,950 µ$ × 1.5 = 40,425 → 41 units: 17 held, 24 beyond (limit 30)
        actual = {"input_tokens": 1180, "output_tokens": 2400}
        confirmed = confirm(api, tenant_a.key, "call-2", model="gpt-4o", dimensions=actual)
        assert confirmed.status_code == 200, confirmed.json()
        hold = confirmed.json()["hold"]
        assert (hold["quantity"], hold["confirmed"], hold["overrun"], hold["actual"]["units"]) == (
            17,
            17,
            24,
            41,
        )
        created = Hold.objects.get()
        assert events() == [
            (
                created.pk,
                17,
                26950,
                {"model": "gpt-4o", "values": actual, "cost_table": 1, "currency": "usd"},
                {"hold": "call-2"},
            ),
            (f"{created.pk}.overrun", 24, None, None, {"hold": "call-2", "overrun": True}),
        ]
        answer = check(api, tenant_a.key, "u1", "ai_credits")
        assert (answer["used"], answer["held"], answer["allowed"]) == (41, 0, False)
        # the same confirm again (a lost answer), after the cost table changed: the stored confirm, nothing new
        doubled = {d: {"micros": r["micros"] * 2, "per": r["per"]} for d, r in GPT.items()}
        cost_table(api, tenant_a.key, {"gpt-4o": doubled}, starts_at=START + timedelta(minutes=1, seconds=5))
    with time_machine.travel(START + timedelta(minutes=2), tick=False):
        again = confirm(api, tenant_a.key, "call-2", model="gpt-4o", dimensions=actual)
        assert (again.status_code, again.json()["duplicate"], again.json()["hold"]["overrun"]) == (
            200,
            True,
            24,
        )
        other = confirm(api, tenant_a.key, "call-2", model="gpt-4o", dimensions={"input_tokens": 1})
        assert (other.status_code, other.json()["error"]["code"]) == (409, "hold_confirmed")
        assert [e[:2] for e in events()] == [(created.pk, 17), (f"{created.pk}.overrun", 24)]
        assert check(api, tenant_a.key, "u1", "ai_credits")["used"] == 41


def test_a_retried_estimate_is_the_same_hold_whatever_it_costs_now(api, tenant_a, ai):
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        first = place(api, tenant_a.key, "call-3", model="gpt-4o", dimensions=ESTIMATE).json()
        doubled = {d: {"micros": r["micros"] * 2, "per": r["per"]} for d, r in GPT.items()}
        cost_table(api, tenant_a.key, {"gpt-4o": doubled}, starts_at=START + timedelta(minutes=1, seconds=5))
    with time_machine.travel(START + timedelta(minutes=2), tick=False):
        again = place(api, tenant_a.key, "call-3", model="gpt-4o", dimensions=ESTIMATE).json()
        assert (again["duplicate"], again["hold"]["quantity"]) == (True, first["hold"]["quantity"])
        for body in ({"model": "gpt-4o", "dimensions": {"input_tokens": 1}}, {"quantity": 17}):
            reused = place(api, tenant_a.key, "call-3", **body)
            assert (reused.status_code, reused.json()["error"]["code"]) == (409, "idempotency_id_reused")
        # a new call is priced by the version in force now: 22,000 µ$ × 1.5 → 33 units, past the limit of 30
        refused = place(api, tenant_a.key, "call-4", model="gpt-4o", dimensions=ESTIMATE).json()
        assert (refused["allowed"], refused["hold"], refused["entitlement"]["allowed"]) == (
            False,
            None,
            False,
        )
        assert Hold.objects.count() == 1


def test_refused_estimates_and_confirms_record_nothing(api, tenant_a, ai):
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        for body, status, code, param in [
            (
                {"model": "gpt-4o", "dimensions": ESTIMATE, "quantity": 3},
                400,
                "parameter_conflict",
                "quantity",
            ),
            ({"model": "gpt-4o"}, 400, "parameter_missing", "dimensions"),
            ({}, 400, "parameter_missing", "quantity"),
            ({"model": "claude", "dimensions": ESTIMATE}, 400, "model_not_priced", "model"),
            ({"model": "gpt-4o", "dimensions": {"images": 1}}, 400, "unknown_dimension", "dimensions.images"),
            ({"model": "gpt-4o", "dimensions": {"input_tokens": 0}}, 400, "invalid_parameter", "dimensions"),
            ({"feature": "api_calls", "dimensions": ESTIMATE}, 400, "feature_has_no_formula", "dimensions"),
        ]:
            response = place(api, tenant_a.key, "bad", **body)
            assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
            assert response.json()["error"]["param"] == param, body
        assert Hold.objects.count() == 0
        assert place(api, tenant_a.key, "call-5", quantity=5).json()["allowed"]
        refused = confirm(api, tenant_a.key, "call-5", model="gpt-4o", dimensions={"images": 2})
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "unknown_dimension")
        conflict = confirm(api, tenant_a.key, "call-5", quantity=1, model="gpt-4o", dimensions=ESTIMATE)
        assert (conflict.status_code, conflict.json()["error"]["code"]) == (400, "parameter_conflict")
        assert Hold.objects.get().status == "active"
        assert events() == []
        # a hold of units may still be confirmed by the call's dimensions: 1 × 10 µ$ × 1.5 → 1 unit
        done = confirm(api, tenant_a.key, "call-5", model="gpt-4o", dimensions={"output_tokens": 1}).json()
        assert (done["hold"]["confirmed"], done["hold"]["estimate"], done["hold"]["actual"]["units"]) == (
            1,
            None,
            1,
        )


def test_a_lease_reports_model_calls_priced_once(api, tenant_a, ai):
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        assert place(api, tenant_a.key, "lease-1", quantity=25).json()["allowed"]
        report = {
            "events": [
                {"id": "r1", "model": "gpt-4o", "dimensions": {"input_tokens": 1000, "output_tokens": 100}},
                {"id": "r2", "quantity": 2},
            ]
        }
        # r1: 2,500 + 1,000 = 3,500 µ$ × 1.5 = 5,250 → 6 units
        reported = api.post(f"{HOLDS}/lease-1/usage", report, key=tenant_a.key)
        assert reported.status_code == 200, reported.json()
        assert (reported.json()["accepted"], reported.json()["hold"]["consumed"]) == (2, 8)
        stored = {e[0]: e[1:4] for e in events()}
        assert stored == {
            "r1": (
                6,
                3500,
                {
                    "model": "gpt-4o",
                    "values": {"input_tokens": 1000, "output_tokens": 100},
                    "cost_table": 1,
                    "currency": "usd",
                },
            ),
            "r2": (2, None, None),
        }
        doubled = {d: {"micros": r["micros"] * 2, "per": r["per"]} for d, r in GPT.items()}
        cost_table(api, tenant_a.key, {"gpt-4o": doubled}, starts_at=START + timedelta(minutes=1, seconds=5))
    with time_machine.travel(START + timedelta(minutes=2), tick=False):
        again = api.post(f"{HOLDS}/lease-1/usage", report, key=tenant_a.key).json()
        assert (again["accepted"], again["duplicates"], again["hold"]["consumed"]) == (0, 2, 8)
        changed = {"events": [{"id": "r1", "model": "gpt-4o", "dimensions": {"input_tokens": 1}}]}
        reused = api.post(f"{HOLDS}/lease-1/usage", changed, key=tenant_a.key)
        assert (reused.status_code, reused.json()["error"]["code"]) == (409, "idempotency_id_reused")
        both = {"events": [{"id": "r3", "quantity": 1, "dimensions": {"input_tokens": 1}}]}
        conflict = api.post(f"{HOLDS}/lease-1/usage", both, key=tenant_a.key)
        assert (conflict.json()["error"]["code"], conflict.json()["error"]["param"]) == (
            "parameter_conflict",
            "events[0].quantity",
        )
        after = confirm(api, tenant_a.key, "lease-1", model="gpt-4o", dimensions={"input_tokens": 1})
        assert (after.status_code, after.json()["error"]["code"]) == (400, "hold_has_reports")
        assert len(events()) == 2
        answer = check(api, tenant_a.key, "u1", "ai_credits")
        assert (answer["used"], answer["held"]) == (8, 17)


def test_a_rates_formula_holds_without_a_cost_table(api, tenant_a, ai):
    formula(api, tenant_a.key, "tokens", RATES)
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        body = {"model": "big", "dimensions": {"input_tokens": 1200, "output_tokens": 300}}
        placed = place(api, tenant_a.key, "t1", feature="tokens", **body).json()
        # the model's own rates: 1,200 × 0.01 + 300 × 0.03 = 21
        assert placed["hold"]["estimate"] == {
            "model": "big",
            "dimensions": body["dimensions"],
            "units": 21,
            "cost": None,
        }
        done = confirm(api, tenant_a.key, "t1", model="big", dimensions={"input_tokens": 100}).json()
        assert (done["hold"]["confirmed"], done["hold"]["actual"]["cost"]) == (1, None)
        assert check(api, tenant_a.key, "u1", "tokens")["used"] == 1


def test_units_beyond_the_hold_are_paid_from_credits_by_the_waterfall(api, tenant_a):
    _plan(tenant_a, {"limit": 10, "credits": {"feature": "ai_credits", "cost": 2}})
    formula(api, tenant_a.key, "summaries", {"type": "rates", "rates": {"input_tokens": "1"}})
    grant(api, tenant_a, 30)
    body = {"id": "w1", "customer": "u1", "feature": "summaries", "dimensions": {"input_tokens": 4}}
    assert api.post(HOLDS, body, key=tenant_a.key).json()["hold"]["quantity"] == 4
    done = confirm(api, tenant_a.key, "w1", dimensions={"input_tokens": 16}).json()
    # 4 held from the allowance; 12 beyond: 6 more from the allowance (limit 10), 6 from credits at 2 each
    assert (done["hold"]["confirmed"], done["hold"]["overrun"]) == (4, 12)
    assert _counter() == (16, 0, 6)
    assert _balance() == 18
    pk = Hold.objects.get().pk
    assert list(UsageEvent.objects.order_by("event_id").values_list("event_id", "quantity", "covered")) == [
        (pk, 4, 0),
        (f"{pk}.overrun", 12, 6),
    ]


def test_a_confirm_after_the_holds_period_keeps_its_units_there_and_records_the_rest_now(api, tenant_a, ai):
    placed_at = datetime(2026, 3, 31, 23, 50, tzinfo=UTC)
    confirmed_at = datetime(2026, 4, 1, 0, 10, tzinfo=UTC)
    with time_machine.travel(placed_at, tick=False):
        assert place(api, tenant_a.key, "late", model="gpt-4o", dimensions=ESTIMATE, expires_in=3600).json()[
            "allowed"
        ]
    with time_machine.travel(confirmed_at, tick=False):
        done = confirm(api, tenant_a.key, "late", model="gpt-4o", dimensions={"output_tokens": 2000}).json()
        # 20,000 µ$ × 1.5 = 30 units: 17 in the hold's period, 13 beyond it in this one
        assert (done["hold"]["confirmed"], done["hold"]["overrun"]) == (17, 13)
        pk = Hold.objects.get().pk
        assert list(
            UsageEvent.objects.order_by("timestamp").values_list(
                "event_id", "quantity", "timestamp", "period_start"
            )
        ) == [
            (pk, 17, placed_at, datetime(2026, 3, 1, tzinfo=UTC)),
            (f"{pk}.overrun", 13, confirmed_at, datetime(2026, 4, 1, tzinfo=UTC)),
        ]
        assert check(api, tenant_a.key, "u1", "ai_credits")["used"] == 13


@pytest.fixture
def team(api, tenant_a):
    p = tenant_a.project
    seats = feature(p, "seats", Feature.Type.ALLOCATION)
    summaries = feature(p, "summaries", Feature.Type.METERED)
    value = {"limit": 100, "per_entity": {"feature": "seats", "limit": 50}}
    with time_machine.travel(START, tick=False):
        subscribe(customer(p, "u1"), product(p, "team", {seats: 3, summaries: value}))
        formula(api, tenant_a.key, "summaries", {"type": "rates", "rates": {"input_tokens": "1"}})
    return p


def test_units_beyond_the_hold_of_a_removed_seat_are_the_accounts(api, tenant_a, team):
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        made = api.post(
            "/api/v1/entitlements/entities",
            {"customer": "u1", "feature": "seats", "entity": "ana"},
            key=tenant_a.key,
        ).json()
        body = {"id": "s1", "customer": "u1", "feature": "summaries", "dimensions": {"input_tokens": 4}}
        assert api.post(HOLDS, {**body, "entity": "ana"}, key=tenant_a.key).json()["allowed"]
        assert (
            api.delete(f"/api/v1/entitlements/entities/{made['id']}", {}, key=tenant_a.key).status_code == 200
        )
        done = confirm(api, tenant_a.key, "s1", dimensions={"input_tokens": 9})
        assert done.status_code == 200, done.json()
        assert (done.json()["hold"]["confirmed"], done.json()["hold"]["overrun"]) == (4, 5)
        pk = Hold.objects.get().pk
        assert list(
            UsageEvent.objects.order_by("event_id").values_list("event_id", "quantity", "properties")
        ) == [
            (pk, 4, {"hold": "s1", "entity": "ana"}),
            (f"{pk}.overrun", 5, {"hold": "s1", "overrun": True}),
        ]
        assert check(api, tenant_a.key, "u1", "summaries")["used"] == 9


def test_an_overrun_whose_id_is_taken_rolls_the_confirm_back(api, tenant_a, ai):
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        assert place(api, tenant_a.key, "c1", model="gpt-4o", dimensions=ESTIMATE).json()["allowed"]
        pk = Hold.objects.get().pk
        taken = {"id": f"{pk}.overrun", "customer": "u1", "feature": "api_calls", "quantity": 1}
        assert api.post("/api/v1/usage", taken, key=tenant_a.key).status_code == 201
        actual = {"input_tokens": 1180, "output_tokens": 2400}
        refused = confirm(api, tenant_a.key, "c1", model="gpt-4o", dimensions=actual)
        assert (refused.status_code, refused.json()["error"]["code"]) == (409, "idempotency_id_reused")
        assert Hold.objects.get().status == "active"
        assert [e[:2] for e in events()] == [(f"{pk}.overrun", 1)]
        answer = check(api, tenant_a.key, "u1", "ai_credits")
        assert (answer["used"], answer["held"]) == (0, 17)
