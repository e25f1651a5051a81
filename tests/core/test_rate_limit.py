"""Per-key rate limiting: 429 `rate_limit_error` with Retry-After, counted per key."""

from django.test import override_settings


@override_settings(API_RATE_LIMIT_PER_MINUTE=3)
def test_fourth_request_in_a_minute_is_429(api, tenant_a, tenant_b):
    statuses = [api.get("/api/v1/project", key=tenant_a.key).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = api.get("/api/v1/project", key=tenant_a.key)
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(limited["Retry-After"]) <= 60
    # Another key has its own budget.
    assert api.get("/api/v1/project", key=tenant_b.key).status_code == 200


@override_settings(API_RATE_LIMIT_PER_MINUTE=1)
def test_rate_limited_write_does_nothing_and_is_not_stored(api, tenant_a):
    from projects.models import ApiKey

    api.get("/api/v1/project", key=tenant_a.key)
    before = ApiKey.objects.count()
    response = api.post("/api/v1/project/api_keys", {}, key=tenant_a.key, headers={"Idempotency-Key": "rl"})
    assert response.status_code == 429
    assert ApiKey.objects.count() == before
    from core.models import IdempotencyKey

    assert not IdempotencyKey.objects.filter(key="rl").exists()


@override_settings(API_RATE_LIMIT_PER_MINUTE=2)
def test_a_consume_over_the_limit_is_429_and_records_nothing(api, tenant_a):
    # Consume reads the customer's snapshot in the limiter's round trip; the limit still comes first.
    from catalog.models import Feature
    from entitlements.models import UsageEvent
    from tests.entitlements.helpers import feature, product

    calls = feature(tenant_a.project, "calls", Feature.Type.METERED)
    product(tenant_a.project, "free", {calls: 10})
    tenant_a.project.default_product = "free"
    tenant_a.project.save()
    statuses = [
        api.post(
            "/api/v1/entitlements/consume",
            {"id": f"c{i}", "customer": "u1", "feature": "calls"},
            key=tenant_a.key,
        ).status_code
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == ["c0", "c1"]


def test_hit_and_read_counts_and_reads_in_one_pipeline():
    from django.core.cache import cache

    from core.cache import redis_client
    from core.ratelimit import hit_and_read

    cache.set("ra:present", {"a": 1}, 60)
    cache.delete("ra:absent")
    count, reset_in, values = hit_and_read("test-read-ahead", 60, ["ra:present", "ra:absent"])
    again, _, none_read = hit_and_read("test-read-ahead", 60, [])
    assert 1 <= reset_in <= 60
    assert again == count + 1
    assert none_read is None
    if redis_client() is not None:  # Redis: read in the limiter's round trip
        assert values == {"ra:present": {"a": 1}, "ra:absent": None}
    else:  # another cache backend: nothing read ahead, the caller reads for itself
        assert values is None


def test_the_values_read_ahead_are_what_the_cache_api_reads_whatever_their_type():
    from django.core.cache import cache

    from core.ratelimit import hit_and_read

    _redis_or_skip()
    written = {"ra:dict": {"a": [1, "b"]}, "ra:int": 7, "ra:negative": -3, "ra:text": "x", "ra:big": 10**30}
    cache.set_many(written, 60)
    _, _, values = hit_and_read("test-read-types", 60, list(written))
    assert values == written == cache.get_many(list(written))
    assert [type(values[k]) for k in written] == [dict, int, int, str, int]


def _redis_or_skip():
    import pytest

    from core.cache import redis_client

    redis = redis_client()
    if redis is None:
        pytest.skip("the limiter's own pipeline runs only with Redis as the cache (REDIS_URL)")
    return redis


def test_a_window_gets_its_expiry_on_its_first_hit_and_keeps_it():
    from core.ratelimit import hit_and_read

    backend, client = _redis_or_skip()
    count, _, _ = hit_and_read("test-expiry", 60, [])
    window_key = next(iter(client.keys(backend.make_key("ratelimit:test-expiry:*"))))
    first_ttl = client.ttl(window_key)
    assert 0 < first_ttl <= 61
    client.expire(window_key, 30)  # later hits must not push the window's end back
    assert hit_and_read("test-expiry", 60, [])[0] == count + 1
    assert 0 < client.ttl(window_key) <= 30


def test_an_error_reply_is_raised_and_leaves_no_reply_for_a_later_call():
    """The counter key holding a non-integer makes INCR fail: the call raises (the throttle then fails open), and
    the replies of the same pipeline (EXPIRE's, MGET's) are not read by the next call on that connection as its
    own."""
    import pytest
    from django.core.cache import cache
    from redis.exceptions import ResponseError

    from core.ratelimit import hit_and_read

    backend, client = _redis_or_skip()
    cache.set("ra:value", {"a": 1}, 60)
    client.set(
        backend.make_key("ratelimit:test-broken:0"), "not a number"
    )  # window 0 of 10^10-second windows
    with pytest.raises(ResponseError):
        hit_and_read("test-broken", 10**10, ["ra:value"])
    for attempt in range(1, 4):
        count, _, values = hit_and_read("test-fine", 60, ["ra:value"])
        assert (count, values) == (attempt, {"ra:value": {"a": 1}})


def test_the_pipeline_answers_each_windows_count_its_reset_and_the_values_read_ahead():
    """Two buckets and two keys in one pipeline: the counts go 1, 2, 3 in each bucket's own window, each window
    ends when its own length says, and the values come back as Django's cache API stored them (an int raw, the
    rest pickled)."""
    import uuid

    import time_machine
    from django.core.cache import cache

    from core.ratelimit import hits_and_read

    backend, client = _redis_or_skip()
    a, b = f"test-pipe-a-{uuid.uuid4().hex}", f"test-pipe-b-{uuid.uuid4().hex}"
    cache.set("ra:number", 7, 60)
    cache.set("ra:snapshot", {"limit": 100, "used": [1, 2]}, 60)
    cache.delete("ra:missing")
    with time_machine.travel(1_800_000_045, tick=False):  # 45 s into a minute, 1,800,000,045 s into window 0
        answers = [
            hits_and_read([(a, 60), (b, 10**10)], ["ra:number", "ra:snapshot", "ra:missing"])
            for _ in range(3)
        ]
    try:
        assert answers == [
            (
                [(n, 15), (n, 10**10 - 1_800_000_045)],
                {"ra:number": 7, "ra:snapshot": {"limit": 100, "used": [1, 2]}, "ra:missing": None},
            )
            for n in (1, 2, 3)
        ]
        assert client.ttl(backend.make_key(f"ratelimit:{a}:30000000")) in (60, 61)
    finally:
        client.delete(backend.make_key(f"ratelimit:{a}:30000000"), backend.make_key(f"ratelimit:{b}:0"))
