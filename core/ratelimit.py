"""Fixed-window request counters: one Redis round trip (INCR + EXPIRE pipelined) when Redis is the cache."""

import time

from django.core.cache import caches

from core.cache import redis_client


def hit(bucket: str, window_seconds: int) -> tuple[int, int]:
    """Counts one hit in the current window of `bucket`; returns (hits so far, seconds until the window ends)."""
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
        count, _ = pipe.execute()
        return int(count), reset_in
    other = caches["default"]
    if other.add(key, 1, timeout=window_seconds + 1):
        return 1, reset_in
    try:
        return other.incr(key), reset_in
    except ValueError:  # expired between add and incr
        other.add(key, 1, timeout=window_seconds + 1)
        return 1, reset_in
