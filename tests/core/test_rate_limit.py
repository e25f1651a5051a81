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
