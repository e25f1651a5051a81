"""The entitlement cache: a warm check costs no SQL and one Redis round trip (the rate limiter's pipeline, which
reads the snapshot too); a warm consume one SQL statement and two round trips; a change is visible to the very
next check; `valid_until` changes answers on time without any
write; with Redis unreachable answers come from the database, never a 500."""

import os
from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone

from catalog.models import Feature
from core import cache as core_cache
from entitlements import cache as ent_cache
from projects.authentication import local_cache
from tests.entitlements import redis_counting
from tests.entitlements.helpers import check, customer, feature, product, subscribe

REDIS_URL = os.environ.get("REDIS_URL", "")


@pytest.fixture
def plan(tenant_a):
    p = tenant_a.project
    calls = feature(p, "api_calls", Feature.Type.METERED)
    sso = feature(p, "sso")
    product(p, "free", {calls: 100})
    p.default_product = "free"
    p.save()
    return {"calls": calls, "sso": sso, "pro": product(p, "pro", {calls: 5000, sso: True})}


def test_warm_check_runs_no_sql(api, tenant_a, plan, django_assert_num_queries):
    check(api, tenant_a.key, "u1", "api_calls")  # cold: computes and caches the snapshot, warms the key
    with django_assert_num_queries(0):
        answer = check(api, tenant_a.key, "u1", "api_calls")
    assert answer["limit"] == 100


COUNTING_CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "tollgate-test-roundtrips",
        "OPTIONS": {
            "CONNECTION_FACTORY": "tests.entitlements.redis_counting.CountingConnectionFactory",
            "CONNECTION_POOL_KWARGS": {"connection_class": redis_counting.CountingConnection},
        },
    }
}


@pytest.mark.skipif(not REDIS_URL, reason="counts Redis round trips; set REDIS_URL=redis://… to run it")
def test_warm_check_is_one_redis_round_trip_and_no_sql(api, tenant_a, plan, django_assert_num_queries):
    # The in-process key cache lives AUTH_LOCAL_CACHE_SECONDS (1 s): on a loaded machine it could expire between
    # the warm-up and the measured request and add the shared cache's read. What is counted here is the check's.
    with override_settings(CACHES=COUNTING_CACHES, AUTH_LOCAL_CACHE_SECONDS=600):
        cache.clear()
        check(api, tenant_a.key, "u1", "api_calls")
        check(api, tenant_a.key, "u1", "api_calls")
        local_cache.clear()
        check(api, tenant_a.key, "u1", "api_calls")  # the auth lookup is warm in process again
        before = redis_counting.sent[0]
        with django_assert_num_queries(0):
            answer = check(api, tenant_a.key, "u1", "api_calls")
        round_trips = redis_counting.sent[0] - before
        cache.clear()
    assert answer["limit"] == 100
    assert round_trips == 1  # the rate limiter's pipeline, which also read the snapshot


@pytest.mark.postgres
@pytest.mark.skipif(not REDIS_URL, reason="counts Redis round trips; set REDIS_URL=redis://… to run it")
def test_warm_consume_is_two_redis_round_trips_and_one_statement(
    api, tenant_a, plan, django_assert_num_queries
):
    def consume(event_id: str) -> dict:
        response = api.post(
            "/api/v1/entitlements/consume",
            {"id": event_id, "customer": "u1", "feature": "api_calls"},
            key=tenant_a.key,
        )
        assert response.status_code == 200, response.json()
        return dict(response.json())

    # As above: the key's in-process entry must not expire between the warm-up and the measured consume.
    with override_settings(CACHES=COUNTING_CACHES, AUTH_LOCAL_CACHE_SECONDS=600):
        cache.clear()
        consume("warm-1")
        consume("warm-2")
        before = redis_counting.sent[0]
        with django_assert_num_queries(1):  # tollgate_metered_consume, in its own transaction
            answer = consume("hot")
        round_trips = redis_counting.sent[0] - before
        after = check(api, tenant_a.key, "u1", "api_calls")
        cache.clear()
    assert (answer["allowed"], answer["used"]) == (True, 3)
    # The limiter's pipeline read the structure; after the statement, one SET bumped the usage version.
    assert round_trips == 2
    assert after["used"] == 3  # and the next check sees it


def test_a_change_is_visible_to_the_next_check(api, tenant_a, plan, recompute):
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is False
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is False  # warm
    cust = customer(tenant_a.project, "u1")
    subscribe(cust, plan["pro"])
    recompute(cust)  # what billing calls when it mirrors the subscription
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is True
    assert check(api, tenant_a.key, "u1", "api_calls")["limit"] == 5000
    api.post(
        "/api/v1/usage",
        {"id": "e1", "customer": "u1", "feature": "api_calls", "quantity": 7},
        key=tenant_a.key,
    )
    assert check(api, tenant_a.key, "u1", "api_calls")["used"] == 7


def test_valid_until_changes_the_answer_without_any_write(api, tenant_a, plan):
    api.post(
        "/api/v1/entitlements/grants",
        {
            "customer": "u1",
            "feature": "sso",
            "reason": "trial",
            "expires_at": (timezone.now() + timedelta(seconds=60)).isoformat(),
        },
        key=tenant_a.key,
    )
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is True
    keys = ent_cache.Keys.of(tenant_a.project.pk, "u1")
    snapshot = cache.get(keys.structure)
    assert snapshot is not None
    assert snapshot["valid_until"] <= (timezone.now() + timedelta(seconds=61)).timestamp()
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert cache.get(keys.structure) is not None  # still cached: only valid_until says it is over
        assert check(api, tenant_a.key, "u1", "sso")["allowed"] is False


def test_trial_end_is_a_valid_until(api, tenant_a, plan):
    from billing.models import Subscription

    subscribe(
        customer(tenant_a.project, "u1"),
        plan["pro"],
        status=Subscription.Status.TRIALING,
        trial_end=timezone.now() + timedelta(seconds=30),
    )
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is True
    snapshot = cache.get(ent_cache.Keys.of(tenant_a.project.pk, "u1").structure)
    assert snapshot["valid_until"] <= (timezone.now() + timedelta(seconds=31)).timestamp()


def test_redis_down_answers_from_the_database(api, tenant_a, plan, caplog):
    down = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    subscribe(customer(tenant_a.project, "u1"), plan["pro"])
    before = core_cache.FALLBACKS._value.get()
    with override_settings(CACHES=down):
        local_cache.clear()
        answer = check(api, tenant_a.key, "u1", "sso")
        consumed = api.post(
            "/api/v1/entitlements/consume",
            {"id": "c1", "customer": "u1", "feature": "api_calls", "quantity": 3},
            key=tenant_a.key,
        )
        listed = api.get("/api/v1/entitlements", key=tenant_a.key, json_body={"customer": "u1"})
    assert answer["allowed"] is True
    assert consumed.status_code == 200
    assert consumed.json()["used"] == 3
    assert listed.status_code == 200
    assert core_cache.FALLBACKS._value.get() >= before + 3
    assert "Entitlement cache unreachable" in caplog.text or core_cache.FALLBACKS._value.get() > before


def test_another_projects_customer_id_answers_from_the_callers_project(api, tenant_a, tenant_b, plan):
    b_calls = feature(tenant_b.project, "api_calls", Feature.Type.METERED)
    subscribe(customer(tenant_b.project, "shared"), product(tenant_b.project, "big", {b_calls: 99999}))
    api.post(
        "/api/v1/usage",
        {"id": "b1", "customer": "shared", "feature": "api_calls", "quantity": 5},
        key=tenant_b.key,
    )
    answer = check(api, tenant_a.key, "shared", "api_calls")
    assert (answer["limit"], answer["used"]) == (100, 0)  # A's default product, none of B's usage
    api.post(
        "/api/v1/entitlements/consume",
        {"id": "a1", "customer": "shared", "feature": "api_calls", "quantity": 2},
        key=tenant_a.key,
    )
    assert check(api, tenant_b.key, "shared", "api_calls")["used"] == 5
    assert check(api, tenant_a.key, "shared", "api_calls")["used"] == 2
    credits = api.get("/api/v1/credits", key=tenant_b.key, json_body={"customer": "shared", "feature": "sso"})
    assert credits.status_code == 404  # A's feature key does not exist in B
