"""Point-in-time checks (`as_of`): the answer as it was at a past instant, recomputed from what Tollgate had
recorded by then — subscription versions, grants, revocations, the usage events, the credit ledger and the holds —
not from today's counters. A day in a customer's life is recorded hour by hour (time travel), then asked about at
each hour; `as_of` now answers exactly what the live answer does."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from billing.models import Subscription
from catalog.models import Feature
from core.serializers import api_time
from entitlements.models import SubscriptionVersion
from tests.entitlements.helpers import customer, feature, hand_subscription, product, subscribe

HOUR = timedelta(hours=1)


@pytest.fixture
def day(api, tenant_a):
    """Hour 0: u1 subscribes to pro (100 calls, 5 seats, SSO). 1: 30 calls, 2 seats, 500 credits granted.
    2: 200 credits spent, 20 calls held. 3: SSO revoked; 5 of the held calls reported. 4: the subscription
    is canceled and the credits grant deleted. Returns (the start, the grant's id)."""
    p = tenant_a.project
    calls = feature(p, "calls", Feature.Type.METERED)
    seats = feature(p, "seats", Feature.Type.ALLOCATION)
    feature(p, "credits", Feature.Type.CREDITS)
    sso = feature(p, "sso")
    pro = product(p, "pro", {calls: 100, seats: 5, sso: True})
    start = timezone.now().replace(microsecond=0) - timedelta(days=2)
    key = tenant_a.key

    def post(path, body, status=(200, 201)):
        response = api.post(path, body, key=key)
        assert response.status_code in status, response.json()
        return response.json()

    def use(event_id, feature_key, quantity):
        body = {"id": event_id, "customer": "u1", "feature": feature_key, "quantity": quantity}
        assert post("/api/v1/entitlements/consume", body)["allowed"] is True

    with time_machine.travel(start, tick=False) as clock:
        subscription = subscribe(customer(p, "u1"), pro, start=start - timedelta(days=1), days=30)
        clock.shift(HOUR)
        use("c1", "calls", 30)
        use("s1", "seats", 2)
        grant = post(
            "/api/v1/entitlements/grants",
            {"customer": "u1", "feature": "credits", "value": 500, "reason": "deal"},
        )
        clock.shift(HOUR)
        use("k1", "credits", 200)
        post(
            "/api/v1/entitlements/holds",
            {"id": "h1", "customer": "u1", "feature": "calls", "quantity": 20, "expires_in": 86400},
        )
        clock.shift(HOUR)
        post("/api/v1/entitlements/revocations", {"customer": "u1", "feature": "sso", "reason": "audit"})
        post("/api/v1/entitlements/holds/h1/usage", {"events": [{"id": "h1-a", "quantity": 5}]})
        clock.shift(HOUR)
        Subscription.objects.filter(pk=subscription.pk).update(
            status=Subscription.Status.CANCELED, canceled_at=timezone.now()
        )
        hand_subscription(subscription)
        assert api.delete(f"/api/v1/entitlements/grants/{grant['id']}", key=key).status_code == 200
    return start


def _as_of(api, tenant, moment, feature, quantity=1):
    response = api.get(
        "/api/v1/entitlements/check",
        key=tenant.key,
        json_body={"customer": "u1", "feature": feature, "quantity": quantity, "as_of": api_time(moment)},
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    return {
        "allowed": body["allowed"],
        "enabled": body["enabled"],
        "limit": body["limit"],
        "used": body["used"],
        "remaining": body["remaining"],
        "balance": body["balance"],
        "held": body["held"],
    }


def _row(allowed, enabled, limit=None, used=None, remaining=None, balance=None, held=None):
    return {
        "allowed": allowed,
        "enabled": enabled,
        "limit": limit,
        "used": used,
        "remaining": remaining,
        "balance": balance,
        "held": held,
    }


def test_each_hour_of_the_day_is_answered_as_it_was(api, tenant_a, day):
    half = timedelta(minutes=30)
    expected = {
        # before the subscription was recorded: nothing gives anything
        day - half: {
            "calls": _row(False, False, 0, 0, 0, held=0),
            "seats": _row(False, False, 0, 0, 0, held=0),
            "credits": _row(False, False, remaining=0, balance=0, held=0),
            "sso": _row(False, False),
        },
        day + half: {
            "calls": _row(True, True, 100, 0, 100, held=0),
            "seats": _row(True, True, 5, 0, 5, held=0),
            "credits": _row(False, False, remaining=0, balance=0, held=0),
            "sso": _row(True, True),
        },
        day + HOUR + half: {
            "calls": _row(True, True, 100, 30, 70, held=0),
            "seats": _row(True, True, 5, 2, 3, held=0),
            "credits": _row(True, True, remaining=500, balance=500, held=0),
            "sso": _row(True, True),
        },
        day + 2 * HOUR + half: {
            "calls": _row(True, True, 100, 30, 50, held=20),
            "seats": _row(True, True, 5, 2, 3, held=0),
            "credits": _row(True, True, remaining=300, balance=300, held=0),
            "sso": _row(True, True),
        },
        day + 3 * HOUR + half: {
            "calls": _row(True, True, 100, 35, 50, held=15),
            "seats": _row(True, True, 5, 2, 3, held=0),
            "credits": _row(True, True, remaining=300, balance=300, held=0),
            "sso": _row(False, False),
        },
        # canceled: no plan gives calls, whose period is then the calendar month's (with nothing used in it)
        day + 4 * HOUR + half: {
            "calls": _row(False, False, 0, 0, 0, held=0),
            "seats": _row(False, False, 0, 2, 0, held=0),
            "credits": _row(False, False, remaining=0, balance=0, held=0),
            "sso": _row(False, False),
        },
    }
    answered = {
        moment: {key: _as_of(api, tenant_a, moment, key) for key in ("calls", "seats", "credits", "sso")}
        for moment in expected
    }
    assert answered == expected
    # A quantity is asked as of then too: 60 more calls fitted at hour 1½, 71 did not.
    assert _as_of(api, tenant_a, day + HOUR + half, "calls", quantity=70)["allowed"] is True
    assert _as_of(api, tenant_a, day + HOUR + half, "calls", quantity=71)["allowed"] is False
    # The subscription's versions are what was recorded: active, then canceled.
    assert list(SubscriptionVersion.objects.order_by("recorded_at").values_list("status", "recorded_at")) == [
        ("active", day),
        ("canceled", day + 4 * HOUR),
    ]


def test_as_of_now_is_the_live_answer(api, tenant_a, day):
    """Recomputed from the records, the answer now equals the one the counters and the cache give, for every
    feature, sources included."""
    p = tenant_a.project
    calls = Feature.objects.get(project=p, key="calls")
    subscribe(customer(p, "u1"), product(p, "plus", {calls: 50}))
    api.post(
        "/api/v1/entitlements/consume",
        {"id": "c9", "customer": "u1", "feature": "calls", "quantity": 7},
        key=tenant_a.key,
    )
    live = api.get("/api/v1/entitlements", key=tenant_a.key, json_body={"customer": "u1"}).json()
    with time_machine.travel(timezone.now() + timedelta(seconds=1), tick=False):
        moment = api_time(timezone.now())
        recomputed = api.get(
            "/api/v1/entitlements", key=tenant_a.key, json_body={"customer": "u1", "as_of": moment}
        ).json()
    assert recomputed == live
    by_key = {row["feature"]: row for row in live["entitlements"]}
    assert (by_key["calls"]["limit"], by_key["calls"]["used"], by_key["calls"]["held"]) == (50, 7, 0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "yesterday",
            "as_of: an ISO 8601 time, such as 2026-11-01T12:00:00Z (a `+` offset must be URL-encoded as %2B).",
        ),
        ("2999-01-01T00:00:00Z", "as_of: a time in the past; the answer for now needs no as_of."),
    ],
)
def test_a_bad_as_of_is_400(api, tenant_a, day, raw, message):
    for path, params in (
        ("/api/v1/entitlements/check", {"customer": "u1", "feature": "calls", "as_of": raw}),
        ("/api/v1/entitlements", {"customer": "u1", "as_of": raw}),
    ):
        response = api.get(path, key=tenant_a.key, json_body=params)
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["code"], error["param"], error["message"]) == ("invalid_parameter", "as_of", message)


def test_an_unknown_feature_as_of_then_is_404_and_another_projects_customer_is_unknown(
    api, tenant_a, tenant_b, day
):
    moment = api_time(day + HOUR * 1.5)
    response = api.get(
        "/api/v1/entitlements/check",
        key=tenant_a.key,
        json_body={"customer": "u1", "feature": "nope", "as_of": moment},
    )
    assert response.status_code == 404
    feature(tenant_b.project, "calls", Feature.Type.METERED)
    other = api.get(
        "/api/v1/entitlements/check",
        key=tenant_b.key,
        json_body={"customer": "u1", "feature": "calls", "as_of": moment},
    ).json()
    assert (other["allowed"], other["limit"], other["used"]) == (False, 0, 0)
