"""Holds: units set aside under the limit, then confirmed (the same or fewer become usage), released or
expired; each ending happens once, whatever races it; a refusal records nothing."""

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from catalog.models import Feature
from core.actors import Actor
from core.models import AuditLogEntry
from entitlements.models import (
    AllocationCounter,
    CreditLedgerEntry,
    CreditLot,
    Hold,
    ThresholdCrossing,
    UsageCounter,
    UsageEvent,
)
from entitlements.services.holds import hold_release
from entitlements.tasks import holds_expire_sweep
from events.models import Event
from tests.entitlements.helpers import check, customer, feature, product, subscribe
from tests.entitlements.test_consume import _concurrently, _post, consume


@pytest.fixture
def plan(tenant_a):
    p = tenant_a.project
    exports = feature(p, "exports", Feature.Type.METERED)
    seats = feature(p, "seats", Feature.Type.ALLOCATION)
    credits = feature(p, "ai_credits", Feature.Type.CREDITS)
    feature(p, "sso")
    product(p, "free", {exports: 5, seats: 2})
    p.default_product = "free"
    p.save()
    return {"exports": exports, "seats": seats, "credits": credits}


def hold(api, key, hold_id, feature, quantity, customer="u1", status=200, **extra):
    body = {"id": hold_id, "customer": customer, "feature": feature, "quantity": quantity, **extra}
    response = api.post("/api/v1/entitlements/holds", body, key=key)
    assert response.status_code == status, response.json()
    return response.json()


def confirm(api, key, hold_id, status=200, **body):
    response = api.post(f"/api/v1/entitlements/holds/{hold_id}/confirm", body, key=key)
    assert response.status_code == status, response.json()
    return response.json()


def release(api, key, hold_id, status=200):
    response = api.post(f"/api/v1/entitlements/holds/{hold_id}/release", {}, key=key)
    assert response.status_code == status, response.json()
    return response.json()


def _state(feature_key: str) -> list[Any]:
    """Everything a hold may change: counters, holds, usage events, lots and the ledger."""
    return [
        list(UsageCounter.objects.values_list("used", "held")),
        list(AllocationCounter.objects.values_list("in_use", "held")),
        list(Hold.objects.values_list("hold_id", "status", "quantity", "confirmed").order_by("hold_id")),
        list(UsageEvent.objects.values_list("event_id", "quantity").order_by("event_id")),
        list(CreditLot.objects.values_list("pk", "remaining").order_by("pk")),
        CreditLedgerEntry.objects.count(),
    ]


def test_a_metered_hold_counts_against_the_limit_and_its_confirm_becomes_usage(api, tenant_a, plan):
    placed = hold(api, tenant_a.key, "job-1", "exports", 3)
    assert placed["allowed"] is True
    assert "duplicate" not in placed
    created = Hold.objects.get()
    assert placed["hold"] == {
        "id": "job-1",
        "object": "entitlement_hold",
        "customer": "u1",
        "feature": "exports",
        "quantity": 3,
        "consumed": 0,
        "confirmed": None,
        "status": "active",
        "expires_at": created.expires_at.isoformat().replace("+00:00", "Z"),
        "created_at": created.created_at.isoformat().replace("+00:00", "Z"),
        "ended_at": None,
        "estimate": None,
        "actual": None,
        "overrun": 0,
    }
    assert created.expires_at - created.created_at == timedelta(seconds=600)
    assert placed["entitlement"] == {
        "allowed": True,
        "feature": "exports",
        "type": "metered",
        "enabled": True,
        "value": 5,
        "limit": 5,
        "used": 0,
        "remaining": 2,
        "balance": None,
        "held": 3,
        "overage": "blocked",
        "cap": None,
        "account_cap": None,
        "credits": None,
        "step": "allowance",
        "windows": [],
        "binding": None,
        "retry_after": None,
    }
    # Held units are not usage, but no consume may take them.
    denied = consume(api, tenant_a.key, "c1", "exports", 3)
    assert (denied["allowed"], denied["used"], denied["held"], denied["remaining"]) == (False, 0, 3, 2)
    assert not UsageEvent.objects.exists()
    assert consume(api, tenant_a.key, "c2", "exports", 2)["remaining"] == 0
    assert UsageCounter.objects.values_list("used", "held").get() == (5, 3)

    confirmed = confirm(api, tenant_a.key, "job-1", quantity=1)
    assert confirmed["hold"]["status"] == "confirmed"
    assert confirmed["hold"]["confirmed"] == 1
    assert confirmed["hold"]["ended_at"] is not None
    assert (confirmed["entitlement"]["used"], confirmed["entitlement"]["held"]) == (3, 0)
    assert confirmed["entitlement"]["remaining"] == 2
    assert UsageCounter.objects.values_list("used", "held").get() == (3, 0)
    event = UsageEvent.objects.get(event_id=created.pk)
    assert (event.kind, event.quantity, event.properties) == ("consume", 1, {"hold": "job-1"})
    ended = Hold.objects.get()
    assert ended.ended_at is not None
    assert created.created_at < event.timestamp <= timezone.now()  # in the hold's period, which is current
    assert event.period_start == ended.period_start
    assert check(api, tenant_a.key, "u1", "exports")["used"] == 3


def test_the_same_confirm_again_changes_nothing_and_any_other_ending_is_409(api, tenant_a, plan):
    hold(api, tenant_a.key, "job-1", "exports", 3)
    confirm(api, tenant_a.key, "job-1")
    before = _state("exports")
    again = confirm(api, tenant_a.key, "job-1")
    assert (again["duplicate"], again["hold"]["confirmed"]) == (True, 3)
    other = confirm(api, tenant_a.key, "job-1", status=409, quantity=2)
    assert other["error"]["code"] == "hold_confirmed"
    late = release(api, tenant_a.key, "job-1", status=409)
    assert late["error"]["code"] == "hold_confirmed"
    assert _state("exports") == before
    assert UsageCounter.objects.values_list("used", "held").get() == (3, 0)


def test_a_confirm_over_the_hold_is_400_and_changes_nothing(api, tenant_a, plan):
    hold(api, tenant_a.key, "job-1", "exports", 3)
    before = _state("exports")
    error = confirm(api, tenant_a.key, "job-1", status=400, quantity=4)["error"]
    assert (error["code"], error["param"]) == ("confirm_exceeds_hold", "quantity")
    assert _state("exports") == before


def test_a_hold_the_limit_refuses_records_nothing(api, tenant_a, plan):
    consume(api, tenant_a.key, "c1", "exports", 3)
    before = _state("exports")
    refused = hold(api, tenant_a.key, "job-1", "exports", 3)
    assert (refused["allowed"], refused["hold"]) == (False, None)
    assert (refused["entitlement"]["allowed"], refused["entitlement"]["remaining"]) == (False, 2)
    assert _state("exports") == before
    # The refused id was not kept: it may be used for a hold that fits.
    assert hold(api, tenant_a.key, "job-1", "exports", 2)["allowed"] is True


def test_the_same_hold_id_again_answers_the_stored_hold_and_another_body_is_409(api, tenant_a, plan):
    hold(api, tenant_a.key, "job-1", "exports", 3)
    before = _state("exports")
    again = hold(api, tenant_a.key, "job-1", "exports", 3)
    assert (again["duplicate"], again["hold"]["quantity"], again["entitlement"]["held"]) == (True, 3, 3)
    reused = hold(api, tenant_a.key, "job-1", "exports", 2, status=409)
    assert reused["error"]["code"] == "idempotency_id_reused"
    assert _state("exports") == before


def test_release_gives_every_unit_back_once(api, tenant_a, plan):
    hold(api, tenant_a.key, "job-1", "exports", 4)
    released = release(api, tenant_a.key, "job-1")
    assert released["hold"]["status"] == "released"
    assert (released["entitlement"]["used"], released["entitlement"]["held"]) == (0, 0)
    assert UsageCounter.objects.values_list("used", "held").get() == (0, 0)
    assert release(api, tenant_a.key, "job-1")["duplicate"] is True
    assert confirm(api, tenant_a.key, "job-1", status=409)["error"]["code"] == "hold_released"
    assert UsageCounter.objects.values_list("used", "held").get() == (0, 0)
    assert not UsageEvent.objects.exists()


def test_seats_held_cannot_be_released_as_seats_in_use(api, tenant_a, plan):
    hold(api, tenant_a.key, "invite-1", "seats", 1)
    assert consume(api, tenant_a.key, "c1", "seats", 1)["remaining"] == 0
    assert consume(api, tenant_a.key, "c2", "seats", 1)["allowed"] is False
    answer = check(api, tenant_a.key, "u1", "seats")
    assert (answer["used"], answer["held"], answer["remaining"]) == (1, 1, 0)
    # One seat is in use and one held: a release of two would free the held one.
    too_many = api.post(
        "/api/v1/entitlements/release",
        {"id": "r1", "customer": "u1", "feature": "seats", "quantity": 2},
        key=tenant_a.key,
    )
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "release_exceeds_allocation"
    assert AllocationCounter.objects.values_list("in_use", "held").get() == (2, 1)
    # The invitation accepted: the held seat stays in use, no longer held.
    confirmed = confirm(api, tenant_a.key, "invite-1")
    assert (confirmed["entitlement"]["used"], confirmed["entitlement"]["held"]) == (2, 0)
    assert AllocationCounter.objects.values_list("in_use", "held").get() == (2, 0)


def test_held_credits_leave_the_balance_and_what_a_confirm_does_not_take_goes_back(api, tenant_a, plan):
    cust = customer(tenant_a.project, "u1")
    soon = timezone.now() + timedelta(days=3)
    first = CreditLot.objects.create(
        project=tenant_a.project,
        customer=cust,
        feature=plan["credits"],
        source="grant",
        amount=3,
        remaining=3,
        expires_at=soon,
    )
    second = CreditLot.objects.create(
        project=tenant_a.project,
        customer=cust,
        feature=plan["credits"],
        source="grant",
        amount=10,
        remaining=10,
    )
    placed = hold(api, tenant_a.key, "run-1", "ai_credits", 5)
    assert (placed["entitlement"]["balance"], placed["entitlement"]["held"]) == (8, 5)
    assert Hold.objects.get().lots == [[first.pk, 3], [second.pk, 2]]
    assert sorted(CreditLedgerEntry.objects.values_list("lot_id", "type", "amount")) == sorted(
        [(first.pk, "hold", -3), (second.pk, "hold", -2)]
    )
    confirmed = confirm(api, tenant_a.key, "run-1", quantity=1)
    assert (confirmed["entitlement"]["balance"], confirmed["entitlement"]["held"]) == (12, 0)
    # Given back last taken first: the lot without expiry gets its 2, the expiring one 2 of its 3.
    assert dict(CreditLot.objects.values_list("pk", "remaining")) == {first.pk: 2, second.pk: 10}
    returned = CreditLedgerEntry.objects.filter(type="hold_return")
    assert sorted(returned.values_list("lot_id", "amount", "reference")) == sorted(
        [(first.pk, 2, "run-1"), (second.pk, 2, "run-1")]
    )
    credits = api.get("/api/v1/credits?customer=u1&feature=ai_credits", key=tenant_a.key).json()
    assert credits["balance"] == 12
    assert UsageEvent.objects.get().quantity == 1


def test_an_unknown_user_holds_no_credits_and_nothing_is_created(api, tenant_a, plan):
    refused = hold(api, tenant_a.key, "run-1", "ai_credits", 1, customer="nobody")
    assert (refused["allowed"], refused["hold"], refused["entitlement"]["balance"]) == (False, None, 0)
    assert not Hold.objects.exists()
    assert not tenant_a.project.customers.exists()


def test_boolean_features_are_not_held_and_ids_with_a_slash_are_refused(api, tenant_a, plan):
    error = hold(api, tenant_a.key, "h1", "sso", 1, status=400)["error"]
    assert (error["code"], error["param"]) == ("feature_not_holdable", "feature")
    error = hold(api, tenant_a.key, "a/b", "exports", 1, status=400)["error"]
    assert (error["code"], error["param"]) == ("invalid_parameter", "id")
    error = hold(api, tenant_a.key, "h1", "exports", 1, status=400, expires_in=86401)["error"]
    assert error["param"] == "expires_in"
    assert not Hold.objects.exists()
    assert not UsageCounter.objects.exists()


def test_the_sweep_expires_holds_past_their_time_and_nothing_else(api, tenant_a, plan):
    hold(api, tenant_a.key, "old", "exports", 2, expires_in=60)
    hold(api, tenant_a.key, "seat", "seats", 1, expires_in=60)
    hold(api, tenant_a.key, "fresh", "exports", 1, expires_in=600)
    Hold.objects.filter(hold_id__in=["old", "seat"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert holds_expire_sweep.delay().get() == 2
    assert dict(Hold.objects.values_list("hold_id", "status")) == {
        "old": "expired",
        "seat": "expired",
        "fresh": "active",
    }
    assert UsageCounter.objects.values_list("used", "held").get() == (1, 1)
    assert AllocationCounter.objects.values_list("in_use", "held").get() == (0, 0)
    assert holds_expire_sweep.delay().get() == 0
    late = confirm(api, tenant_a.key, "old", status=409)
    assert late["error"]["code"] == "hold_expired"
    assert UsageCounter.objects.values_list("used", "held").get() == (1, 1)
    assert not UsageEvent.objects.exists()


def test_a_confirm_that_finds_its_hold_past_expiry_expires_it_instead(api, tenant_a, plan):
    hold(api, tenant_a.key, "old", "exports", 2)
    Hold.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert confirm(api, tenant_a.key, "old", status=409)["error"]["code"] == "hold_expired"
    assert Hold.objects.get().status == "expired"
    assert UsageCounter.objects.values_list("used", "held").get() == (0, 0)
    detail = api.get("/api/v1/entitlements/holds/old", key=tenant_a.key).json()
    assert (detail["hold"]["status"], detail["entitlement"]["held"]) == ("expired", 0)


def test_a_hold_crossing_a_usage_threshold_announces_it_once(api, tenant_a, plan):
    hold(api, tenant_a.key, "job-1", "exports", 4)  # 0 → 4 of 5 crosses 80 %
    reached = Event.objects.get(type="usage.threshold_reached")
    assert (reached.data["object"]["threshold"], reached.data["object"]["used"]) == (0.8, 4)
    confirm(api, tenant_a.key, "job-1", quantity=4)
    assert Event.objects.filter(type="usage.threshold_reached").count() == 1


def test_an_operator_release_is_audited(tenant_a, plan, api, admin_user):
    hold(api, tenant_a.key, "job-1", "exports", 2)
    hold_release(project=tenant_a.project, hold_id="job-1", actor=Actor.user(admin_user), reason="stuck job")
    entry = AuditLogEntry.objects.get(action="entitlement.hold_released")
    assert (entry.reason, entry.after["hold"], entry.after["status"]) == ("stuck job", "job-1", "released")
    assert UsageCounter.objects.values_list("used", "held").get() == (0, 0)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_holds_never_exceed_the_limit(tenant_a, plan):
    pro = product(tenant_a.project, "pro", {plan["exports"]: 20})
    subscribe(customer(tenant_a.project, "hot"), pro)
    results = _concurrently(
        50,
        lambda i, client: _post(
            client,
            tenant_a.key,
            "/api/v1/entitlements/holds",
            {"id": f"h{i}", "customer": "hot", "feature": "exports", "quantity": 1},
        ),
    )
    assert sum(r["allowed"] for r in results) == 20
    assert Hold.objects.filter(status="active").count() == 20
    assert UsageCounter.objects.values_list("used", "held").get() == (20, 20)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_confirms_releases_and_the_sweep_racing_on_one_hold_end_it_once(tenant_a, plan):
    cust = customer(tenant_a.project, "hot")
    CreditLot.objects.create(
        project=tenant_a.project,
        customer=cust,
        feature=plan["credits"],
        source="grant",
        amount=10,
        remaining=10,
    )
    for round_ in range(5):
        placed = _post(
            Client(),
            tenant_a.key,
            "/api/v1/entitlements/holds",
            {"id": f"r{round_}", "customer": "hot", "feature": "ai_credits", "quantity": 2},
        )
        assert placed["allowed"] is True
        Hold.objects.filter(hold_id=f"r{round_}").update(
            expires_at=timezone.now() + timedelta(milliseconds=50)
        )

        def end(i: int, client: Any, hold_id: str = f"r{round_}") -> int:
            if i % 3 == 0:
                # The task's body, in this thread: `.get()` refuses to wait where a worker ran before.
                return holds_expire_sweep()
            path = f"/api/v1/entitlements/holds/{hold_id}/" + ("confirm" if i % 3 == 1 else "release")
            return client.post(
                path, {}, content_type="application/json", headers={"Authorization": f"Bearer {tenant_a.key}"}
            ).status_code

        _concurrently(12, end)
        ended = Hold.objects.get(hold_id=f"r{round_}")
        assert ended.status in ("confirmed", "released", "expired")
        kept = 2 if ended.status == "confirmed" else 0
        spent = sum(h.confirmed or 0 for h in Hold.objects.filter(status="confirmed"))
        assert sum(CreditLot.objects.values_list("remaining", flat=True)) == 10 - spent
        assert UsageEvent.objects.filter(properties__hold=f"r{round_}").count() == (1 if kept else 0)
        assert CreditLedgerEntry.objects.filter(reference=f"r{round_}", type="hold_return").count() == (
            0 if kept else 1
        )


# --- usage reported against a hold (a lease) ----------------------------------------------------------------


def report(api, key, hold_id, events, status=200):
    body = {"events": [{"id": event_id, "quantity": quantity} for event_id, quantity in events]}
    response = api.post(f"/api/v1/entitlements/holds/{hold_id}/usage", body, key=key)
    assert response.status_code == status, response.json()
    return response.json()


def test_usage_reported_against_a_lease_is_counted_once_and_the_rest_goes_back(api, tenant_a, plan):
    pro = product(tenant_a.project, "pro", {plan["exports"]: 20})
    subscribe(customer(tenant_a.project, "u1"), pro)
    hold(api, tenant_a.key, "lease-1", "exports", 10)
    first = report(api, tenant_a.key, "lease-1", [("a", 3), ("b", 2)])
    assert (first["accepted"], first["duplicates"], first["hold"]["consumed"]) == (2, 0, 5)
    assert (
        first["entitlement"]["used"],
        first["entitlement"]["held"],
        first["entitlement"]["remaining"],
    ) == (
        5,
        5,
        10,
    )
    again = report(api, tenant_a.key, "lease-1", [("b", 2), ("c", 1)])  # b was sent before: counted once
    assert (again["accepted"], again["duplicates"], again["hold"]["consumed"]) == (1, 1, 6)
    assert UsageCounter.objects.values_list("used", "held").get() == (10, 4)
    before = _state("exports")
    over = report(api, tenant_a.key, "lease-1", [("d", 1), ("e", 4)], status=400)["error"]
    assert (over["code"], over["param"]) == ("usage_exceeds_hold", "events")
    twice = report(api, tenant_a.key, "lease-1", [("f", 1), ("f", 1)], status=400)["error"]
    assert twice["param"] == "events"
    assert _state("exports") == before

    released = release(api, tenant_a.key, "lease-1")
    assert (released["hold"]["status"], released["hold"]["consumed"], released["hold"]["confirmed"]) == (
        "released",
        6,
        None,
    )
    assert UsageCounter.objects.values_list("used", "held").get() == (6, 0)
    events = UsageEvent.objects.order_by("event_id").values_list("event_id", "quantity", "properties")
    assert list(events) == [
        ("a", 3, {"hold": "lease-1"}),
        ("b", 2, {"hold": "lease-1"}),
        ("c", 1, {"hold": "lease-1"}),
    ]
    assert report(api, tenant_a.key, "lease-1", [("g", 1)], status=409)["error"]["code"] == "hold_released"


def test_a_confirm_after_reported_usage_keeps_at_least_what_was_reported(api, tenant_a, plan):
    hold(api, tenant_a.key, "lease-1", "exports", 5)
    report(api, tenant_a.key, "lease-1", [("a", 3)])
    below = confirm(api, tenant_a.key, "lease-1", status=400, quantity=2)["error"]
    assert below["code"] == "confirm_below_reported"
    done = confirm(api, tenant_a.key, "lease-1", quantity=4)
    assert (done["hold"]["confirmed"], done["hold"]["consumed"]) == (4, 3)
    assert UsageCounter.objects.values_list("used", "held").get() == (4, 0)
    assert sorted(UsageEvent.objects.values_list("quantity", flat=True)) == [1, 3]


def test_credits_reported_against_a_lease_stay_spent_and_the_rest_returns(api, tenant_a, plan):
    cust = customer(tenant_a.project, "u1")
    CreditLot.objects.create(
        project=tenant_a.project,
        customer=cust,
        feature=plan["credits"],
        source="grant",
        amount=10,
        remaining=10,
    )
    hold(api, tenant_a.key, "lease-1", "ai_credits", 6)
    reported = report(api, tenant_a.key, "lease-1", [("a", 2)])
    assert (reported["entitlement"]["balance"], reported["entitlement"]["held"]) == (4, 4)
    release(api, tenant_a.key, "lease-1")
    answer = check(api, tenant_a.key, "u1", "ai_credits")
    assert (answer["balance"], answer["held"]) == (8, 0)
    assert CreditLot.objects.get().remaining == 8


def test_seats_reported_against_a_lease_stay_in_use_after_it_ends(api, tenant_a, plan):
    hold(api, tenant_a.key, "lease-1", "seats", 2)
    report(api, tenant_a.key, "lease-1", [("ada", 1)])
    assert AllocationCounter.objects.values_list("in_use", "held").get() == (2, 1)
    Hold.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert report(api, tenant_a.key, "lease-1", [("bob", 1)], status=409)["error"]["code"] == "hold_expired"
    assert AllocationCounter.objects.values_list("in_use", "held").get() == (1, 0)
    assert Hold.objects.values_list("status", "consumed").get() == ("expired", 1)
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["ada"]


def test_a_threshold_is_announced_once_a_period_though_a_released_hold_takes_usage_back_below_it(
    api, tenant_a, plan
):
    hold(api, tenant_a.key, "job-1", "exports", 4)  # 0 → 4 of 5: 80 %
    release(api, tenant_a.key, "job-1")  # back to 0
    assert consume(api, tenant_a.key, "c1", "exports", 4)["used"] == 4  # 0 → 4 again
    hold(api, tenant_a.key, "job-2", "exports", 1)  # 4 → 5: 100 %
    release(api, tenant_a.key, "job-2")
    assert consume(api, tenant_a.key, "c2", "exports", 1)["used"] == 5  # 4 → 5 again
    reached = Event.objects.filter(type="usage.threshold_reached").order_by("sequence")
    assert [(e.data["object"]["threshold"], e.data["object"]["used"]) for e in reached] == [
        (0.8, 4),
        (1.0, 5),
    ]
    assert ThresholdCrossing.objects.count() == 2
