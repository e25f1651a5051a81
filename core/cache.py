"""Cache access that degrades instead of failing: with Redis down, callers fall back to the database; and the
versions of cached answers, bumped on commit.

A cache outage must cost latency, never a 500 (ARCHITECTURE.md). Failures are logged at most once a minute
per operation so an outage does not flood the logs.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import cache, caches
from django.db import transaction
from django_redis.cache import RedisCache
from prometheus_client import Counter

from core.ids import random_token

logger = logging.getLogger(__name__)
T = TypeVar("T")

_last_warned: dict[str, float] = {}


def _guard(operation: str, call: Callable[[], T], fallback: T) -> T:
    try:
        return call()
    except Exception as exc:  # any backend error (redis.ConnectionError, TimeoutError, OSError …)
        now = time.monotonic()
        if now - _last_warned.get(operation, -60.0) >= 60.0:
            _last_warned[operation] = now
            logger.warning(
                "Cache %s failed (%s); continuing without the cache.", operation, exc.__class__.__name__
            )
        return fallback


def cache_get(key: str) -> Any:
    return _guard("get", lambda: cache.get(key), None)


def cache_get_many(keys: list[str]) -> dict[str, Any]:
    """The keys found (none if the cache is unavailable)."""
    return _guard("get_many", lambda: cache.get_many(keys), {})


def cache_set(key: str, value: Any, timeout: float) -> None:
    _guard("set", lambda: cache.set(key, value, timeout), None)


def cache_add(key: str, value: Any, timeout: float) -> bool | None:
    """True if added, False if present, None if the cache is unavailable."""
    return _guard("add", lambda: cache.add(key, value, timeout), None)


def cache_invalidate(keys: list[str]) -> None:
    """Deletes cached answers that a committed change made wrong; if the cache cannot be reached, every cached
    answer of an older epoch stops being trusted instead (`cache_epoch_bump`)."""
    try:
        cache.delete_many(keys)
    except Exception as exc:
        cache_epoch_bump(f"invalidation failed ({exc.__class__.__name__})")


# --- the cache epoch (core.models.CacheEpoch) -----------------------------------------------------------------

_EPOCH_KEY = "cache-epoch"


def cache_epoch() -> int:
    """The current epoch, read from the database at most once per CACHE_EPOCH_CHECK_SECONDS per process: the
    longest an answer cached before a failed invalidation can still be served by a process."""
    from django.conf import settings

    from core.models import CacheEpoch

    value = _epoch_local.get(_EPOCH_KEY)
    if value is None:
        value = CacheEpoch.objects.filter(pk=1).values_list("value", flat=True).first() or 0
        _epoch_local.set(_EPOCH_KEY, value, settings.CACHE_EPOCH_CHECK_SECONDS)
    return int(value)


def cache_epoch_bump(reason: str) -> None:
    """Distrusts every answer cached so far (they are recomputed from the database as they are asked for)."""
    from django.db.models import F

    from core.models import CacheEpoch

    if not CacheEpoch.objects.filter(pk=1).update(value=F("value") + 1):
        _, created = CacheEpoch.objects.get_or_create(pk=1, defaults={"value": 1})
        if not created:
            CacheEpoch.objects.filter(pk=1).update(value=F("value") + 1)
    _epoch_local.discard([_EPOCH_KEY])
    logger.warning("Cache epoch bumped: %s; cached answers of earlier epochs are ignored.", reason)


def epoch_stamped(value: Any) -> tuple[int, Any]:
    return (cache_epoch(), value)


def epoch_current(stamped: Any) -> Any:
    """The value of a stamped cache entry if it was cached under the current epoch, else None (a miss)."""
    if isinstance(stamped, tuple | list) and len(stamped) == 2 and stamped[0] == cache_epoch():
        return stamped[1]
    return None


def redis_client() -> tuple[Any, Any] | None:
    """The default cache backend and its redis-py client (django-redis keeps one per backend, on a pool shared by
    the process), for commands Django's cache API lacks (MGET, pipelines, scripts), or None when the cache is not
    Redis. Values go in and out as the backend stores them: `backend.client.encode` / `decode`."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    return backend, backend.client.get_client(write=True)


LOCAL_MAX_ENTRIES = 10_000  # a process-local cache past this is emptied, never grown


class LocalCache:
    """A tiny TTL cache in process memory: saves the shared-cache (or database) round trip on hot keys. What it
    holds may be stale for its TTL in other processes: callers that cannot accept that check again on a miss."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Any]] = {}
        self._touched: dict[str, float] = {}

    def get(self, key: str) -> Any:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def set(self, key: str, value: Any, ttl: float) -> None:
        if ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= LOCAL_MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + ttl, value)

    def discard(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)

    def should_touch(self, key_id: str, interval: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._touched.get(key_id, 0.0) > now - interval:
                return False
            if len(self._touched) >= LOCAL_MAX_ENTRIES:
                self._touched.clear()
            self._touched[key_id] = now
            return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._touched.clear()


_epoch_local = LocalCache()


# --- versions of cached answers, bumped on commit (the entitlement snapshots, the project's answers version) ---

# A version key lives a week; a missing one is made anew, and every answer tagged with the old one stops being served.
VERSION_TTL_SECONDS = 7 * 86_400

FALLBACKS = Counter(
    "tollgate_entitlement_cache_fallbacks",
    "Entitlement answers computed from the database because the cache was unreachable.",
)
_answers_last_warned = [-60.0]


class VersionStore:
    """The shared cache, reached with as few round trips as possible: with Redis, the reused client of
    `core.cache.redis_client`, `MGET` for reads and one SET or pipeline for the version bumps of a commit. Any other
    backend goes through Django's API."""

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        redis = redis_client()
        if redis is None:
            return dict(cache.get_many(keys))
        backend, client = redis
        loads = backend.client.decode
        values = client.mget([backend.make_key(key) for key in keys])
        return {key: loads(value) for key, value in zip(keys, values, strict=True) if value is not None}

    def set_many(self, items: dict[str, Any], timeout: float) -> None:
        redis = redis_client()
        if redis is None:
            cache.set_many(items, timeout)
            return
        backend, client = redis
        dumps = backend.client.encode
        if len(items) == 1:  # a consume's one bump: a plain SET costs less than a pipeline of one
            ((key, value),) = items.items()
            client.set(backend.make_key(key), dumps(value), ex=int(timeout))
            return
        pipe = client.pipeline(transaction=False)
        for key, value in items.items():
            pipe.set(backend.make_key(key), dumps(value), ex=int(timeout))
        pipe.execute()

    def add(self, key: str, value: Any, timeout: float) -> bool:
        redis = redis_client()
        if redis is None:
            return bool(cache.add(key, value, timeout))
        backend, client = redis
        return bool(client.set(backend.make_key(key), backend.client.encode(value), ex=int(timeout), nx=True))


version_store = VersionStore()


def cache_unavailable(operation: str, exc: Exception) -> None:
    FALLBACKS.inc()
    now = time.monotonic()
    if now - _answers_last_warned[0] >= 60.0:
        _answers_last_warned[0] = now
        logger.warning(
            "Entitlement cache unreachable during %s (%s); answering from the database.",
            operation,
            exc.__class__.__name__,
        )


def bump_on_commit(keys: list[str]) -> None:
    """Gives each version key a new token once the current transaction commits (at once outside one), in one
    pipeline. A bump that cannot reach the cache bumps the cache epoch in the database instead, and snapshot tags
    carry the epoch, so no answer cached before it is served again when the cache returns. Both the entitlement snapshots' versions
    (`entitlements.cache`) and the project's answers version (`projects.versions`) move through it."""

    def bump() -> None:
        try:
            version_store.set_many({key: random_token(12) for key in keys}, VERSION_TTL_SECONDS)
        except Exception as exc:  # the versions could not move: no cached answer of this epoch is trusted now
            cache_unavailable("version bump", exc)
            cache_epoch_bump(f"version bump failed ({exc.__class__.__name__})")

    transaction.on_commit(bump)
