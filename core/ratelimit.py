"""Fixed-window request counters: one Redis round trip (INCR + EXPIRE in a redis-py pipeline) when Redis is the
cache.

A caller that knows which cache keys it reads next can have them fetched in that same round trip
(`hit_and_read`): the API's hottest views read their entitlement snapshot this way.
"""

import pickle
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
    counts, values = hits_and_read([(bucket, window_seconds)], keys)
    return counts[0][0], counts[0][1], values


def hits_and_read(
    buckets: Sequence[tuple[str, int]], keys: Sequence[str]
) -> tuple[list[tuple[int, int]], dict[str, Any] | None]:
    """One hit in the current window of each `(bucket, window_seconds)` — (hits so far, seconds until that window
    ends) each, in order — and the values of the cache `keys`, all in one pipeline when Redis is the cache (a
    request limited per key and per project pays one round trip, not two). A Redis error (a counter that is not
    a number included) is raised once every reply has been read, so the connection goes back to the pool clean."""
    now = int(time.time())
    windows = [(f"ratelimit:{bucket}:{now // seconds}", seconds) for bucket, seconds in buckets]
    resets = [(now // seconds + 1) * seconds - now for _, seconds in buckets]
    redis = redis_client()
    if redis is None:
        return [
            (_hit_other(key, seconds), reset) for (key, seconds), reset in zip(windows, resets, strict=True)
        ], None
    backend, client = redis
    # Queued with pipeline_execute_command, what pipe.incr(…) and the others end in: their generic execute_command
    # path costs ~10 µs of the check's CPU for three commands.
    pipe = client.pipeline(transaction=False)
    for key, seconds in windows:
        full_key = backend.make_and_validate_key(key)
        pipe.pipeline_execute_command("INCRBY", full_key, 1)
        pipe.pipeline_execute_command("EXPIRE", full_key, seconds + 1, "NX")
    if keys:
        pipe.pipeline_execute_command("MGET", *(backend.make_key(k) for k in keys))
    results = pipe.execute()
    values = None
    if keys:
        values = {
            k: None if v is None else _decoded(backend, v) for k, v in zip(keys, results[-1], strict=True)
        }
    return [(int(results[2 * i]), reset) for i, reset in enumerate(resets)], values


# What a value pickled by django-redis's serializer (the default, which settings keep) opens with: PROTO.
_PICKLED = b"\x80"


def _decoded(backend: Any, raw: bytes) -> Any:
    """A cached value as `backend.client.decode` reads it, a pickled one straight through pickle: decode tries
    `int()` first and opens a context manager for the compressor, 5 µs of the check's hot path per value."""
    return pickle.loads(raw) if raw[:1] == _PICKLED else backend.client.decode(raw)  # noqa: S301 (our cache)


def _hit_other(key: str, window_seconds: int) -> int:
    """A hit counted in a cache other than Redis (add, then incr)."""
    other = caches["default"]
    if other.add(key, 1, timeout=window_seconds + 1):
        return 1
    try:
        return int(other.incr(key))
    except ValueError:  # expired between add and incr
        other.add(key, 1, timeout=window_seconds + 1)
        return 1
