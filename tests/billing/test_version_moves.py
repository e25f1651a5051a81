"""Moving subscribers between product versions (#52 point 3, "move now"): a cohort on an older version is moved to
the latest at once — their answers become the version's, each move audited and announced once; a second run, a
retry or a concurrent one moves nobody twice; a preview writes nothing; moving back works; another project's key
moves nothing. Driven through the emulator's Checkout and webhooks, read through the API."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client

from billing.models import Subscription, SubscriptionItem
from billing.services.version_moves import version_moves_due
from core.models import AuditLogEntry
from entitlements.models import CreditLot
from events.models import Event
from tests.catalog.test_product_versions import V3, _limits, versioned  # noqa: F401 (a fixture)
from tests.entitlements.helpers import check, listed
from tests.entitlements.test_plan_credits import _no_failed_events, _subscribe

MOVES = "/api/v1/subscriptions/version_moves"


@pytest.fixture
def cohort(api, tenant_a, versioned, stripe_emulator, stripe_webhooks):  # noqa: F811
    """`early` and `middle` subscribed on version 2, then version 3 published and `late` subscribed on it."""
    for customer in ("early", "middle"):
        _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, customer=customer)
    assert api.patch("/api/v1/products/pro", {"features": V3}, key=tenant_a.key).status_code == 200
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, customer="late")
    _no_failed_events()
    return {
        customer: SubscriptionItem.objects.get(subscription__customer__external_id=customer).subscription_id
        for customer in ("early", "middle", "late")
    }


def _versions():
    return dict(
        SubscriptionItem.objects.values_list("subscription__customer__external_id", "product_version")
    )


def _announced():
    return sorted(
        (e.data["object"]["customer"], e.previous_attributes["version"])
        for e in Event.objects.filter(type="subscription.version_changed")
    )


CHANGES = [
    {"feature": "ai_credits", "change": "changed", "before": 500, "after": 200},
    {"feature": "api_calls", "change": "changed", "before": 1000, "after": 300},
    {"feature": "export", "change": "removed", "before": True, "after": None},
]


def test_a_cohort_previewed_then_moved_now_once_and_back(api, tenant_a, cohort):
    preview = api.post(MOVES, {"product": "pro", "to_version": 3, "preview": True}, key=tenant_a.key)
    assert preview.status_code == 200, preview.json()
    body = preview.json()
    assert (body["object"], body["product"], body["to_version"], body["preview"], body["moved"]) == (
        "version_moves",
        "pro",
        3,
        True,
        0,
    )
    assert [(m["customer"], m["from_version"], m["changes"], m["moved"]) for m in body["moves"]] == [
        ("early", 2, CHANGES, False),
        ("middle", 2, CHANGES, False),
    ]
    assert _versions() == {"early": 2, "middle": 2, "late": 3}
    assert (_announced(), AuditLogEntry.objects.filter(action="subscription.version_changed").count()) == (
        [],
        0,
    )

    moved = api.post(
        MOVES,
        {"product": "pro", "to_version": 3, "from_versions": [2], "reason": "new tier"},
        key=tenant_a.key,
    )
    assert moved.status_code == 200, moved.json()
    assert (moved.json()["moved"], [m["customer"] for m in moved.json()["moves"]]) == (2, ["early", "middle"])
    assert _versions() == {"early": 3, "middle": 3, "late": 3}
    assert _limits(api, tenant_a, "early") == (300, False, 500)  # credits already granted stay
    assert _announced() == [("early", 2), ("middle", 2)]
    event = Event.objects.filter(type="subscription.version_changed").first()
    assert [item["version"] for item in event.data["object"]["items"]] == [3]
    audits = AuditLogEntry.objects.filter(action="subscription.version_changed").order_by("created_at")
    assert [(a.reason, a.before, a.after) for a in audits] == [
        ("new tier", {"product": "pro", "version": 2}, {"product": "pro", "version": 3})
    ] * 2

    again = api.post(MOVES, {"product": "pro", "to_version": 3}, key=tenant_a.key)
    assert (again.status_code, again.json()["moved"], again.json()["moves"]) == (200, 0, [])
    assert len(_announced()) == 2

    back = api.post(
        MOVES, {"product": "pro", "to_version": 2, "subscriptions": [cohort["early"]]}, key=tenant_a.key
    )
    assert (back.status_code, back.json()["moved"]) == (200, 1)
    assert _versions() == {"early": 2, "middle": 3, "late": 3}
    assert _limits(api, tenant_a, "early") == (1000, True, 500)
    assert _announced() == [("early", 2), ("early", 3), ("middle", 2)]
    answer = api.get(f"/api/v1/subscriptions/{cohort['early']}", key=tenant_a.key).json()
    assert [item["version"] for item in answer["items"]] == [2]


def test_a_bad_version_or_another_projects_subscription_moves_nothing(api, tenant_a, tenant_b, cohort):
    unknown = api.post(MOVES, {"product": "pro", "to_version": 7}, key=tenant_a.key)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "unknown_version")
    foreign = api.post(MOVES, {"product": "pro", "to_version": 3}, key=tenant_b.key)
    assert (foreign.status_code, foreign.json()["error"]["type"]) == (404, "not_found")
    listed = api.post(
        MOVES,
        {"product": "pro", "to_version": 3, "subscriptions": [cohort["early"], "subs_nope"]},
        key=tenant_a.key,
    )
    assert (listed.status_code, listed.json()["error"]["type"]) == (404, "not_found")
    assert _versions() == {"early": 2, "middle": 2, "late": 3}
    assert _announced() == []
    assert AuditLogEntry.objects.filter(action="subscription.version_changed").count() == 0


def test_a_plan_of_the_product_is_moved_alone(api, tenant_a, cohort, stripe_emulator, stripe_webhooks):
    """`prices`: only the subscriptions holding one of these prices of the product (the euro plan here)."""
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, customer="euro", price="pro-monthly-eur")
    _no_failed_events()
    assert _versions()["euro"] == 3
    unknown = api.post(
        MOVES, {"product": "pro", "to_version": 2, "prices": ["credits-1000"]}, key=tenant_a.key
    )
    assert (unknown.status_code, unknown.json()["error"]["code"], unknown.json()["error"]["param"]) == (
        400,
        "unknown_price",
        "prices",
    )
    moved = api.post(
        MOVES, {"product": "pro", "to_version": 2, "prices": ["pro-monthly-eur"]}, key=tenant_a.key
    ).json()
    assert (moved["moved"], [m["customer"] for m in moved["moves"]]) == (1, ["euro"])
    assert _versions() == {"early": 2, "middle": 2, "late": 3, "euro": 2}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_four_moves_at_once_move_each_subscriber_once(api, tenant_a, cohort):
    """Four requests moving the same cohort at the same moment on PostgreSQL: each subscription moved, audited
    and announced once; the others find it moved under its row lock."""
    barrier = threading.Barrier(4)
    answers: list[tuple[int, int]] = []

    def move():
        barrier.wait()
        response = Client().post(
            MOVES,
            data=json.dumps({"product": "pro", "to_version": 3}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {tenant_a.key}"},
        )
        answers.append((response.status_code, response.json()["moved"]))
        connection.close()

    threads = [threading.Thread(target=move) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(status for status, _ in answers) == [200] * 4
    assert sum(moved for _, moved in answers) == 2
    assert _versions() == {"early": 3, "middle": 3, "late": 3}
    assert _announced() == [("early", 2), ("middle", 2)]
    assert AuditLogEntry.objects.filter(action="subscription.version_changed").count() == 2


def test_a_move_at_period_end_is_in_force_from_then_on_credits_the_new_period_and_is_announced_once(
    api, tenant_a, cohort, stripe_emulator, stripe_webhooks
):
    early = Subscription.objects.get(pk=cohort["early"])
    end = early.current_period_end
    scheduled = api.post(
        MOVES,
        {"product": "pro", "to_version": 3, "from_versions": [2], "when": "period_end"},
        key=tenant_a.key,
    )
    assert scheduled.status_code == 200, scheduled.json()
    body = scheduled.json()
    assert (body["when"], body["moved"]) == ("period_end", 2)
    assert [(m["customer"], m["from_version"], m["effective_at"]) for m in body["moves"]] == [
        ("early", 2, end.isoformat().replace("+00:00", "Z")),
        (
            "middle",
            2,
            Subscription.objects.get(pk=cohort["middle"])
            .current_period_end.isoformat()
            .replace("+00:00", "Z"),
        ),
    ]
    # Until the period ends, nothing changes for them, and nothing is announced.
    assert _versions() == {"early": 2, "middle": 2, "late": 3}
    assert _limits(api, tenant_a, "early") == (1000, True, 500)
    assert _announced() == []
    again = api.post(
        MOVES,
        {"product": "pro", "to_version": 3, "from_versions": [2], "when": "period_end"},
        key=tenant_a.key,
    )
    assert again.json()["moved"] == 0
    # `middle` changes its mind before it takes effect: moved back to the version it is on, the move is canceled.
    back = api.post(
        MOVES, {"product": "pro", "to_version": 2, "subscriptions": [cohort["middle"]]}, key=tenant_a.key
    )
    assert (back.status_code, back.json()["moved"]) == (200, 1)
    item = SubscriptionItem.objects.get(subscription_id=cohort["middle"])
    assert (item.product_version, item.pending_version, item.pending_version_at) == (2, None, None)
    actions = sorted(
        AuditLogEntry.objects.filter(action__startswith="subscription.version").values_list(
            "action", flat=True
        )
    )
    assert actions == [
        "subscription.version_move_canceled",
        "subscription.version_move_scheduled",
        "subscription.version_move_scheduled",
    ]

    # From the period's end, `early`'s answers are version 3's, before any sweep.
    with time_machine.travel(end + timedelta(seconds=1)):
        rows = listed(api, tenant_a.key, "early")
        assert (rows["api_calls"]["limit"], check(api, tenant_a.key, "early", "export")["allowed"]) == (
            300,
            False,
        )
        assert listed(api, tenant_a.key, "middle")["api_calls"]["limit"] == 1000
    # The renewal bills the new period on version 3 for `early` (its credits), version 2 for `middle`.
    stripe_emulator.advance(31 * 86400)
    stripe_webhooks.deliver()
    _no_failed_events()
    renewal_lots = dict(
        CreditLot.objects.filter(plan_period__period_start__gte=end).values_list(
            "customer__external_id", "amount"
        )
    )
    assert (renewal_lots["early"], renewal_lots["middle"]) == (200, 500)
    # Beat's sweep makes it final and announces it, once.
    assert version_moves_due(now=end - timedelta(seconds=1)) == 0
    assert version_moves_due(now=end + timedelta(seconds=1)) == 1
    assert version_moves_due(now=end + timedelta(seconds=2)) == 0
    item = SubscriptionItem.objects.get(subscription_id=cohort["early"])
    assert (item.product_version, item.pending_version, item.pending_version_at) == (3, None, None)
    assert _announced() == [("early", 2)]


def test_a_features_move_at_the_period_end_takes_effect_at_stripes_period_end_while_the_renewals_events_wait(
    api, tenant_a, cohort, stripe_emulator, stripe_sdk
):
    """The period renewed at Stripe and its events have not reached Tollgate: the mirror still holds the period
    that ended. A move at the period's end that changes only features takes effect at the end of the period
    Stripe's subscription is in (read for it), not at the mirror's, which has passed: the answers would change
    a period early. A move scheduled before, and due, is not pushed a period on by a retry."""
    early = Subscription.objects.get(pk=cohort["early"])
    mirrored_end = early.current_period_end
    scheduled_before = api.post(
        MOVES,
        {"product": "pro", "to_version": 3, "subscriptions": [cohort["middle"]], "when": "period_end"},
        key=tenant_a.key,
    )
    assert scheduled_before.json()["moved"] == 1
    middle_at = SubscriptionItem.objects.get(subscription_id=cohort["middle"]).pending_version_at
    ahead = int(mirrored_end.timestamp()) - stripe_emulator.clock.now() + 60
    with time_machine.travel(datetime.fromtimestamp(stripe_emulator.clock.now() + ahead, UTC), tick=False):
        stripe_emulator.clock.set_offset(0)  # the emulator reads the travelled clock
        stripe_emulator.advance(0)  # renewed at Stripe; its events are not delivered
        live = stripe_sdk().v1.subscriptions.retrieve(early.stripe_subscription_id)
        stripe_end = live["items"].data[0].current_period_end
        assert stripe_end > int(mirrored_end.timestamp())
        assert Subscription.objects.get(pk=cohort["early"]).current_period_end == mirrored_end
        body = {"product": "pro", "to_version": 3, "from_versions": [2], "when": "period_end"}
        moved = api.post(MOVES, body, key=tenant_a.key)
        assert moved.status_code == 200, moved.json()
        assert [(m["customer"], m["effective_at"]) for m in moved.json()["moves"]] == [
            ("early", datetime.fromtimestamp(stripe_end, UTC).isoformat().replace("+00:00", "Z"))
        ]
        assert _limits(api, tenant_a, "early")[:2] == (1000, True)  # still version 2's, as at Stripe
        assert listed(api, tenant_a.key, "middle")["api_calls"]["limit"] == 300  # its move is in force
        early_item = SubscriptionItem.objects.get(subscription_id=cohort["early"])
        middle_item = SubscriptionItem.objects.get(subscription_id=cohort["middle"])
        assert (early_item.pending_version, early_item.pending_version_at) == (
            3,
            datetime.fromtimestamp(stripe_end, UTC),
        )
        assert (middle_item.product_version, middle_item.pending_version, middle_item.pending_version_at) == (
            2,
            3,
            middle_at,
        )
        assert version_moves_due() == 1  # `middle`'s, due at the end it was scheduled for; `early`'s is not
    assert _versions() == {"early": 2, "middle": 3, "late": 3}
    assert _announced() == [("middle", 2)]
