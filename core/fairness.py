"""Per-tenant fair shares of the workers, and the count of each tenant's throttled requests.

A *share* caps how many tasks of one kind of work of one tenant (a project's Stripe events, an endpoint's
deliveries) are queued or running at once. A task takes a place in its tenant's share before it is queued; when
the share is full the work is not queued but waits in PostgreSQL (it is stored there anyway), and the task that
frees a place queues the tenant's next waiting work. So a tenant's backlog occupies at most its share of the
broker's queue and of the workers, and another tenant's work waits at most behind that share, not behind the
backlog.

A share is a Redis sorted set of the places taken (`<token>:<what>`, scored by when the place lapses): a task
lost with its worker or the broker gives its place back when the lease runs out, and the beat sweeps queue what
still waits. Without Redis (tests, the embedded mode) or when Redis cannot be reached, every place is granted (the
shares fail open, as the rate limiter does: an outage must not stop the work).
"""

import logging
import time
import uuid

from django.core.cache import caches

from core.cache import redis_client

logger = logging.getLogger(__name__)

# Takes a place if the share has room: drops lapsed places, then adds one if fewer than the cap are taken.
_TAKE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4])) + 1)
return 1
"""

_THROTTLED_KEY = "fairness:throttled"


def _share_key(kind: str, tenant: str) -> str:
    return f"fairness:share:{kind}:{tenant}"


def share_take(*, kind: str, tenant: str, what: str, cap: int, lease_seconds: float) -> str | None:
    """A place in `tenant`'s share of `kind` for the task that will do `what` (a key, an id): its token, to
    give it back with `share_release`; None when the share is full. `cap` 0 or less: no cap (a token is still
    returned, and releasing it is harmless)."""
    token = uuid.uuid4().hex
    member = f"{token}:{what}"
    redis = redis_client()
    if cap <= 0 or redis is None:
        return token
    backend, client = redis
    try:
        taken = client.eval(
            _TAKE,
            1,
            backend.make_and_validate_key(_share_key(kind, tenant)),
            time.time(),
            member,
            cap,
            lease_seconds,
        )
    except Exception as exc:
        logger.warning(
            "Fair shares unavailable (%s); %s work queued without a cap.", exc.__class__.__name__, kind
        )
        return token
    return token if int(taken) else None


def share_renew(*, kind: str, tenant: str, token: str, what: str, lease_seconds: float) -> None:
    """Keeps a place taken while its task is still at work (a long drain outlives the first lease)."""
    redis = redis_client()
    if redis is None or not token:
        return
    backend, client = redis
    try:
        client.zadd(
            backend.make_and_validate_key(_share_key(kind, tenant)),
            {f"{token}:{what}": time.time() + lease_seconds},
            xx=True,
        )
    except Exception as exc:
        logger.warning("Fair shares unavailable (%s).", exc.__class__.__name__)


def share_release(*, kind: str, tenant: str, token: str, what: str) -> None:
    """Gives a place back (its task ended). Unknown or lapsed tokens change nothing."""
    redis = redis_client()
    if redis is None or not token:
        return
    backend, client = redis
    try:
        client.zrem(backend.make_and_validate_key(_share_key(kind, tenant)), f"{token}:{what}")
    except Exception as exc:
        logger.warning("Fair shares unavailable (%s).", exc.__class__.__name__)


def share_holders(*, kind: str, tenant: str) -> list[str]:
    """What the tasks holding a place in the share do (`what` of each live place), oldest place first."""
    redis = redis_client()
    if redis is None:
        return []
    backend, client = redis
    try:
        members = client.zrangebyscore(
            backend.make_and_validate_key(_share_key(kind, tenant)), time.time(), "+inf"
        )
    except Exception as exc:
        logger.warning("Fair shares unavailable (%s).", exc.__class__.__name__)
        return []
    return [
        m.decode().partition(":")[2] if isinstance(m, bytes) else str(m).partition(":")[2] for m in members
    ]


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
