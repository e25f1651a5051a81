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
        commands: list[tuple[Any, ...]] = [("INCR", full_key), ("EXPIRE", full_key, window_seconds + 1, "NX")]
        if keys:
            commands.append(("MGET", *(backend.make_key(k) for k in keys)))
        results = _pipelined(client, commands)
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


def _pipelined(client: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """The commands in one write and their raw replies, on one pooled connection: what a redis-py pipeline sends,
    without its per-command bookkeeping, which costs a third of this call on the hot path (the entitlement check).
    Retried on a broken connection as redis-py retries (the client's retry policy); a connection left mid-reply by
    any error is closed before it returns to the pool, so no later caller reads this call's replies."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:

        def send_and_read() -> list[Any]:
            connection.send_packed_command(connection.pack_commands(commands))
            return [connection.read_response() for _ in commands]

        replies: list[Any] = connection.retry.call_with_retry(
            send_and_read, lambda error: connection.disconnect()
        )
        return replies
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)
