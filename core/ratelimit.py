"""Fixed-window request counters: one Redis round trip (INCR + EXPIRE pipelined) when Redis is the cache.

A caller that knows which cache keys it reads next can have them fetched in that same round trip
(`hit_and_read`): the API's hottest views read their entitlement snapshot this way.
"""

import time
from collections.abc import Sequence
from typing import Any

from django.core.cache import caches

from core.cache import redis_client


def hit(bucket: str, window_seconds: int) -> tuple[int, int]:
    """Counts one hit in the current window of `bucket`; returns (hits so far, seconds until the window ends)."""
    count, reset_in, _ = hit_and_read(bucket, window_seconds, ())
    return count, reset_in


def hit_and_read(
    bucket: str, window_seconds: int, keys: Sequence[str]
) -> tuple[int, int, dict[str, Any] | None]:
    """`hit`, plus the values of the cache `keys` (named as for Django's cache API; absent → None), read in the
    same pipeline when Redis is the cache. Without Redis, or without keys, the values are None: read them as
    usual."""
    now = int(time.time())
    window = now // window_seconds
    reset_in = (window + 1) * window_seconds - now
    key = f"ratelimit:{bucket}:{window}"
    redis = redis_client()
    if redis is not None:
        backend, client = redis
        full_key = backend.make_and_validate_key(key)
        pipe = client.pipeline(transaction=False)
        pipe.incr(full_key)
        pipe.expire(full_key, window_seconds + 1, nx=True)
        if keys:
            pipe.mget([backend.make_key(k) for k in keys])
        results = pipe.execute()
        values = None
        if keys:
            loads = backend._cache._serializer.loads
            values = {k: None if v is None else loads(v) for k, v in zip(keys, results[2], strict=True)}
        return int(results[0]), reset_in, values
    other = caches["default"]
    if other.add(key, 1, timeout=window_seconds + 1):
        return 1, reset_in, None
    try:
        return other.incr(key), reset_in, None
    except ValueError:  # expired between add and incr
        other.add(key, 1, timeout=window_seconds + 1)
        return 1, reset_in, None
