"""Per-tenant counts of requests refused by a project's limit (`core.throttling`), exported by `/metrics`. The
fair claim of stored work is `core.claims`."""

import logging

from django.core.cache import caches

from core.cache import redis_client

logger = logging.getLogger(__name__)

_THROTTLED_KEY = "fairness:throttled"


def throttled_count(*, kind: str, tenant: str) -> None:
    """Counts one request of `tenant` refused by a per-tenant limit of `kind` (exported per project by
    `/metrics`). Best effort: the count is lost, not the request, when the cache cannot be reached."""
    redis = redis_client()
    try:
        if redis is None:
            other = caches["default"]
            key = f"{_THROTTLED_KEY}:{kind}:{tenant}"
            if not other.add(key, 1, timeout=None):
                other.incr(key)
            return
        backend, client = redis
        client.hincrby(backend.make_and_validate_key(_THROTTLED_KEY), f"{kind}:{tenant}", 1)
    except Exception as exc:
        logger.warning("Throttle counts unavailable (%s).", exc.__class__.__name__)


def throttled_counts(*, kind: str, tenants: list[str]) -> dict[str, int]:
    """{tenant: requests of `kind` refused} for each of `tenants`, since the cache last lost its data."""
    if not tenants:
        return {}
    redis = redis_client()
    if redis is None:
        found = caches["default"].get_many([f"{_THROTTLED_KEY}:{kind}:{t}" for t in tenants])
        return {t: int(found.get(f"{_THROTTLED_KEY}:{kind}:{t}") or 0) for t in tenants}
    backend, client = redis
    values = client.hmget(backend.make_and_validate_key(_THROTTLED_KEY), [f"{kind}:{t}" for t in tenants])
    return {t: int(v or 0) for t, v in zip(tenants, values, strict=True)}
