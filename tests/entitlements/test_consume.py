"""Consume and release: checked and recorded atomically; a denial records nothing; limits and balances hold
under real concurrency (PostgreSQL, threads)."""

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from catalog.models import Feature
from core.models import AuditLogEntry
from entitlements.models import AllocationCounter, CreditLedgerEntry, CreditLot, UsageCounter, UsageEvent
from events.models import Event
from tests.connection_races import one_race_at_a_time
from tests.entitlements.helpers import check, customer, feature, product, subscribe


@pytest.fixture
def plan(tenant_a):
    p = tenant_a.project
    exports = feature(p, "exports", Feature.Type.METERED)
    seats = feature(p, "seats", Feature.Type.ALLOCATION)
    credits = feature(p, "ai_credits", Feature.Type.CREDITS)
    feature(p, "sso")
    product(p, "free", {exports: 3, seats: 2})
    p.default_product = "free"
    p.save()
    return {"exports": exports, "seats": seats, "credits": credits}


def consume(api, key, event_id, feature, quantity=1, customer="u1"):
    response = api.post(
        "/api/v1/entitlements/consume",
        {"id": event_id, "customer": customer, "feature": feature, "quantity": quantity},
        key=key,
    )
    assert response.status_code == 200, response.json()
    return response.json()


def test_consume_counts_until_the_limit_and_a_denial_records_nothing(api, tenant_a, plan):
    first = consume(api, tenant_a.key, "x1", "exports", 2)
    assert first == {
        "allowed": True,
        "feature": "exports",
        "type": "metered",
        "enabled": True,
        "value": 3,
        "limit": 3,
        "used": 2,
        "remaining": 1,
        "balance": None,
        "held": 0,
        "overage": "blocked",
        "cap": None,
        "account_cap": None,
        "credits": None,
        "step": "allowance",
        "windows": [],
        "binding": None,
        "retry_after": None,
    }
    denied = consume(api, tenant_a.key, "x2", "exports", 2)
    assert (denied["allowed"], denied["used"], denied["remaining"]) == (False, 2, 1)
    assert not UsageEvent.objects.filter(event_id="x2").exists()
    assert consume(api, tenant_a.key, "x3", "exports", 1)["used"] == 3
    assert check(api, tenant_a.key, "u1", "exports")["allowed"] is False
    assert UsageCounter.objects.get().used == 3


def test_the_same_consume_id_is_recorded_once(api, tenant_a, plan):
    consume(api, tenant_a.key, "x1", "exports")
    again = consume(api, tenant_a.key, "x1", "exports")
    assert again["allowed"] is True
    assert again["duplicate"] is True
    assert again["used"] == 1
    reused = api.post(
        "/api/v1/entitlements/consume",
        {"id": "x1", "customer": "u1", "feature": "seats", "quantity": 1},
        key=tenant_a.key,
    )
    assert reused.status_code == 409


def test_a_first_use_over_the_limit_records_nothing_not_even_a_counter(api, tenant_a, plan):
    denied = consume(api, tenant_a.key, "big", "exports", 4)
    assert (denied["allowed"], denied["used"], denied["remaining"]) == (False, 0, 3)
    assert not UsageEvent.objects.exists()
    assert not UsageCounter.objects.exists()
    assert not Event.objects.filter(type="usage.threshold_reached").exists()
    # The refused id was not kept: the same id may be used for a use that fits.
    again = consume(api, tenant_a.key, "big", "exports", 1)
    assert (again["allowed"], again["used"], again.get("duplicate")) == (True, 1, None)
    assert UsageEvent.objects.get().quantity == 1


def test_a_use_crossing_both_thresholds_at_once_announces_each_once(api, tenant_a, plan):
    # The one-statement path steps aside for a use that crosses 80 % or 100 %: the transactional path counts it
    # and records the announcements with it.
    assert consume(api, tenant_a.key, "x1", "exports", 3)["used"] == 3
    reached = Event.objects.filter(type="usage.threshold_reached").order_by("sequence")
    assert [(e.data["object"]["threshold"], e.data["object"]["used"]) for e in reached] == [
        (0.8, 3),
        (1.0, 3),
    ]
    assert UsageCounter.objects.get().used == 3
    assert list(UsageEvent.objects.values_list("event_id", "quantity")) == [("x1", 3)]


def test_uses_below_the_marks_announce_nothing_and_the_crossing_one_does(api, tenant_a, plan):
    pro = product(tenant_a.project, "pro", {plan["exports"]: 10})
    subscribe(customer(tenant_a.project, "u2"), pro)
    for index in range(7):
        assert consume(api, tenant_a.key, f"y{index}", "exports", customer="u2")["used"] == index + 1
    assert not Event.objects.filter(type="usage.threshold_reached").exists()
    assert consume(api, tenant_a.key, "y7", "exports", 2, customer="u2")["used"] == 9  # 7 → 9 crosses 8
    reached = Event.objects.get(type="usage.threshold_reached")
    assert (reached.data["object"]["threshold"], reached.data["object"]["used"]) == (0.8, 9)
    denied = consume(api, tenant_a.key, "y8", "exports", 2, customer="u2")
    assert (denied["allowed"], denied["used"]) == (False, 9)
    assert UsageEvent.objects.filter(customer__external_id="u2").count() == 8
    assert UsageCounter.objects.get(customer__external_id="u2").used == 9


@pytest.mark.parametrize("path", ["/api/v1/entitlements/consume", "/api/v1/entitlements/release"])
def test_a_malformed_body_is_400_and_records_nothing(api, tenant_a, plan, path):
    # The rate limiter reads the body for the customer whose structure it reads ahead; a body that cannot be
    # parsed still answers DRF's error, not an empty body's.
    response = api.request("POST", path, data='{"id": "x1", "customer": "u1", ', key=tenant_a.key)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "malformed_body"
    assert error["message"].startswith("Malformed request body: JSON parse error")
    assert not UsageEvent.objects.exists()
    assert not UsageCounter.objects.exists()
    assert not AllocationCounter.objects.exists()
    other_type = api.request(
        "POST", path, data="id=x1&customer=u1&feature=exports", content_type="text/plain", key=tenant_a.key
    )
    assert other_type.status_code == 415
    assert other_type.json()["error"]["type"] == "invalid_request_error"
    assert not UsageEvent.objects.exists()


def test_boolean_features_are_not_consumable(api, tenant_a, plan):
    response = api.post(
        "/api/v1/entitlements/consume", {"id": "x", "customer": "u1", "feature": "sso"}, key=tenant_a.key
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "feature_not_consumable"


def test_allocation_consume_and_release(api, tenant_a, plan):
    assert consume(api, tenant_a.key, "s1", "seats", 2)["used"] == 2
    assert consume(api, tenant_a.key, "s2", "seats")["allowed"] is False
    released = api.post(
        "/api/v1/entitlements/release",
        {"id": "r1", "customer": "u1", "feature": "seats", "quantity": 1, "reason": "user removed"},
        key=tenant_a.key,
    )
    assert released.status_code == 200, released.json()
    assert (released.json()["used"], released.json()["remaining"]) == (1, 1)
    entry = AuditLogEntry.objects.get(action="entitlement.released")
    assert entry.reason == "user removed"
    assert entry.actor_type == "api_key"
    assert (entry.before, entry.after["in_use"]) == ({"in_use": 2}, 1)
    replay = api.post(
        "/api/v1/entitlements/release",
        {"id": "r1", "customer": "u1", "feature": "seats", "quantity": 1},
        key=tenant_a.key,
    )
    assert replay.json()["used"] == 1  # the same id again changes nothing
    too_many = api.post(
        "/api/v1/entitlements/release",
        {"id": "r2", "customer": "u1", "feature": "seats", "quantity": 5},
        key=tenant_a.key,
    )
    assert too_many.status_code == 400
    assert AllocationCounter.objects.get().in_use == 1
    assert consume(api, tenant_a.key, "s3", "seats")["used"] == 2  # the freed seat is taken again


def test_credits_are_spent_oldest_expiring_first_and_never_below_zero(api, tenant_a, plan):
    soon = (timezone.now() + timedelta(days=2)).isoformat()
    later = (timezone.now() + timedelta(days=20)).isoformat()
    for value, expires_at in ((100, None), (50, later), (30, soon)):
        body = {"customer": "u1", "feature": "ai_credits", "value": value, "reason": "promo"}
        if expires_at:
            body["expires_at"] = expires_at
        assert api.post("/api/v1/entitlements/grants", body, key=tenant_a.key).status_code == 201
    assert check(api, tenant_a.key, "u1", "ai_credits")["balance"] == 180
    spent = consume(api, tenant_a.key, "c1", "ai_credits", 40)
    assert (spent["allowed"], spent["balance"], spent["remaining"]) == (True, 140, 140)
    remaining = {lot.amount: lot.remaining for lot in CreditLot.objects.all()}
    assert remaining == {30: 0, 50: 40, 100: 100}  # the lot expiring first went first
    denied = consume(api, tenant_a.key, "c2", "ai_credits", 141)
    assert (denied["allowed"], denied["balance"]) == (False, 140)
    assert not CreditLedgerEntry.objects.filter(reference="c2").exists()
    assert consume(api, tenant_a.key, "c3", "ai_credits", 140)["balance"] == 0
    assert check(api, tenant_a.key, "u1", "ai_credits")["allowed"] is False
    low = [e.data["object"] for e in Event.objects.filter(type="credits.low").order_by("sequence")]
    assert low[-1]["balance"] == 0
    assert low[-1]["empty"] is True
    credits = api.get(
        "/api/v1/credits", key=tenant_a.key, json_body={"customer": "u1", "feature": "ai_credits"}
    ).json()
    assert credits["balance"] == 0
    assert sum(e["amount"] for e in credits["ledger"]) == 0


def test_deleting_a_credits_grant_takes_back_what_is_left(api, tenant_a, plan):
    grant = api.post(
        "/api/v1/entitlements/grants",
        {"customer": "u1", "feature": "ai_credits", "value": 100, "reason": "promo"},
        key=tenant_a.key,
    ).json()
    consume(api, tenant_a.key, "c1", "ai_credits", 30)
    deleted = api.delete(f"/api/v1/entitlements/grants/{grant['id']}", {"reason": "ended"}, key=tenant_a.key)
    assert deleted.status_code == 200
    assert check(api, tenant_a.key, "u1", "ai_credits")["balance"] == 0
    assert AuditLogEntry.objects.get(action="entitlement_grant.deleted").reason == "ended"


def test_expired_credit_lots_do_not_count(api, tenant_a, plan):
    import time_machine

    api.post(
        "/api/v1/entitlements/grants",
        {
            "customer": "u1",
            "feature": "ai_credits",
            "value": 10,
            "reason": "promo",
            "expires_at": (timezone.now() + timedelta(hours=1)).isoformat(),
        },
        key=tenant_a.key,
    )
    assert check(api, tenant_a.key, "u1", "ai_credits")["balance"] == 10
    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=1)):
        assert check(api, tenant_a.key, "u1", "ai_credits")["balance"] == 0
        assert consume(api, tenant_a.key, "late", "ai_credits")["allowed"] is False


def _concurrently(count: int, work: Any) -> list[Any]:
    """`work(index, client)` on `count` threads released at once; their results, in order. A thread that raised
    fails the caller with its exception (pytest would only warn of it, and the test would go on with a hole). One
    race at a time on the PostgreSQL server (tests/connection_races.py): `count` threads hold `count` connections."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index, Client())
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    with one_race_at_a_time():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return results


def _post(client: Client, key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        path, body, content_type="application/json", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.json()
    return dict(response.json())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_consumers_never_exceed_the_limit(tenant_a, plan):
    pro = product(tenant_a.project, "pro", {plan["exports"]: 20})
    subscribe(customer(tenant_a.project, "hot"), pro)
    results = _concurrently(
        50,
        lambda i, client: _post(
            client,
            tenant_a.key,
            "/api/v1/entitlements/consume",
            {"id": f"t{i}", "customer": "hot", "feature": "exports", "quantity": 1},
        ),
    )
    assert sum(r["allowed"] for r in results) == 20
    assert UsageCounter.objects.get(customer__external_id="hot").used == 20
    assert UsageEvent.objects.filter(kind="consume").count() == 20
    # The consumes that crossed 80 % and 100 % took the transactional path: each threshold announced once.
    reached = Event.objects.filter(type="usage.threshold_reached").order_by("sequence")
    assert [(e.data["object"]["threshold"], e.data["object"]["used"]) for e in reached] == [
        (0.8, 16),
        (1.0, 20),
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_retries_of_one_consume_count_it_once(tenant_a, plan):
    pro = product(tenant_a.project, "pro", {plan["exports"]: 100})
    subscribe(customer(tenant_a.project, "hot"), pro)
    results = _concurrently(
        20,
        lambda i, client: _post(
            client,
            tenant_a.key,
            "/api/v1/entitlements/consume",
            {"id": "the-same-job", "customer": "hot", "feature": "exports", "quantity": 5},
        ),
    )
    assert all(r["allowed"] for r in results)
    assert sum(not r.get("duplicate") for r in results) == 1
    assert UsageCounter.objects.get(customer__external_id="hot").used == 5
    assert UsageEvent.objects.filter(kind="consume").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_credit_spenders_never_overdraw(tenant_a, plan):
    cust = customer(tenant_a.project, "hot")
    for amount in (10, 7, 8):
        CreditLot.objects.create(
            project=tenant_a.project,
            customer=cust,
            feature=plan["credits"],
            source="grant",
            amount=amount,
            remaining=amount,
        )
    results = _concurrently(
        50,
        lambda i, client: _post(
            client,
            tenant_a.key,
            "/api/v1/entitlements/consume",
            {"id": f"t{i}", "customer": "hot", "feature": "ai_credits", "quantity": 2},
        ),
    )
    assert sum(r["allowed"] for r in results) == 12  # 25 credits, 2 each
    assert sum(CreditLot.objects.values_list("remaining", flat=True)) == 1
    assert CreditLedgerEntry.objects.filter(type="consume").count() >= 12


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_seat_takes_and_releases_stay_within_bounds(tenant_a, plan):
    pro = product(tenant_a.project, "team", {plan["seats"]: 10})
    subscribe(customer(tenant_a.project, "team"), pro)

    def work(i: int, client: Client) -> dict[str, Any]:
        path = "/api/v1/entitlements/consume" if i % 2 == 0 else "/api/v1/entitlements/release"
        response = client.post(
            path,
            {"id": f"s{i}", "customer": "team", "feature": "seats", "quantity": 1},
            content_type="application/json",
            headers={"Authorization": f"Bearer {tenant_a.key}"},
        )
        return {"path": path, "status": response.status_code, "body": response.json()}

    results = _concurrently(40, work)
    taken = sum(1 for r in results if r["path"].endswith("consume") and r["body"].get("allowed"))
    released = sum(1 for r in results if r["path"].endswith("release") and r["status"] == 200)
    counter = AllocationCounter.objects.get(customer__external_id="team")
    assert 0 <= counter.in_use <= 10
    assert counter.in_use == taken - released


def test_a_refused_consume_for_an_unknown_user_writes_nothing(api, tenant_a, plan):
    from customers.models import Customer

    denied = consume(api, tenant_a.key, "c1", "ai_credits", 1, customer="stranger")
    assert (denied["allowed"], denied["balance"]) == (False, 0)
    assert not Customer.objects.filter(external_id="stranger").exists()
    assert not UsageEvent.objects.exists()
    assert consume(api, tenant_a.key, "x1", "exports", 1, customer="stranger")["allowed"] is True
    assert Customer.objects.filter(external_id="stranger").exists()
