"""Per-tenant fair shares of the workers, and the count of each tenant's throttled requests.

Work of one kind (Stripe events, deliveries) takes a *place* before its task is queued. A kind has a *pool* of
places for all tenants together (sized to the workers) and each tenant a *share* of it (`cap`). A tenant may
take a place when

- it holds fewer than its share (always: a tenant within its share is never refused, whatever the others do), or
- the pool has a free place and no other tenant waiting for one holds fewer places than it does.

So a tenant alone gets the whole pool (work-conserving), and the share binds only while another tenant has work
waiting: then a freed place goes to the waiting tenant holding the fewest. A refused tenant is recorded as
waiting; its work is not queued but stays in PostgreSQL (it is stored there anyway), and the task that frees a
place hands it over (`share_hand_over`): to the waiting tenants, fewest places first.

The pool is a Redis sorted set of the places taken (`<tenant>|<token>|<what>`, scored by when the place lapses),
the waiting tenants another; one Lua script decides and takes a place atomically, on Redis's own clock (the
processes' clocks may differ: other hosts, or a test's workers travelling in time). A task lost with its worker
or the broker gives its place back when the lease runs out, and the beat sweeps queue what still waits. Without
Redis (tests, the embedded mode) or when Redis cannot be reached, every place is granted (the shares fail open,
as the rate limiter does: an outage must not stop the work).
"""

import logging
import uuid
from collections.abc import Callable

from django.core.cache import caches

from core.cache import redis_client

logger = logging.getLogger(__name__)

# Redis's clock, in seconds (scripts may read it: Redis replicates their effects, not the script).
_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
"""

# KEYS: the pool's places, its waiting tenants. ARGV: tenant, member, share, pool size, lease, waiting lease.
# Drops lapsed places and waiters, then takes a place by the rule above (1), or records the tenant waiting (0).
_TAKE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local tenant, cap, pool = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local held, total = {}, 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local owner = string.match(member, '^([^|]*)|')
  held[owner] = (held[owner] or 0) + 1
  total = total + 1
end
local mine = held[tenant] or 0
local granted = mine < cap
if not granted and total < pool then
  granted = true
  for _, other in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if other ~= tenant and (held[other] or 0) < mine then
      granted = false
      break
    end
  end
end
if granted then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), ARGV[2])
  redis.call('EXPIRE', KEYS[1], 3600)
  return 1
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), tenant)
redis.call('EXPIRE', KEYS[2], 3600)
return 0
"""
)

# KEYS: the pool's places. ARGV: member, lease. Renews a place still taken (a lapsed one stays given back).
_RENEW = (
    _NOW
    + """
return redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
"""
)

# KEYS: the pool's places, its waiting tenants. ARGV: the tenant whose task freed a place. A flat list: how many
# places other tenants hold, then the live places of each waiting tenant: tenant, count, score, tenant, count,
# score … in the order of their last refusal (the score: when that refusal lapses).
_TURNS = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local held, others = {}, 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local owner = string.match(member, '^([^|]*)|')
  held[owner] = (held[owner] or 0) + 1
  if owner ~= ARGV[1] then
    others = others + 1
  end
end
local out = {others}
local waiting = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #waiting, 2 do
  table.insert(out, waiting[i])
  table.insert(out, held[waiting[i]] or 0)
  table.insert(out, waiting[i + 1])
end
return out
"""
)

# KEYS: the waiting tenants. ARGV: tenant, the score a hand-over read. Stops counting the tenant waiting unless
# it was refused again since (a refusal re-scores it).
_UNWAIT = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""

# A refused tenant counts as waiting this long after its last refusal, unless a hand-over finds it has nothing
# waiting any more (its work is in the database; a stale entry only makes others yield until the next hand-over).
WAITING_LEASE_SECONDS = 600.0

_THROTTLED_KEY = "fairness:throttled"


def _keys(kind: str) -> tuple[str, str]:
    return f"fairness:pool:{kind}", f"fairness:waiting:{kind}"


def _member(tenant: str, token: str, what: str) -> str:
    return f"{tenant}|{token}|{what}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def share_take(*, kind: str, tenant: str, what: str, cap: int, pool: int, lease_seconds: float) -> str | None:
    """A place in the pool of `kind` for `tenant`'s task that will do `what` (a key, an id): its token, to give
    it back with `share_release`; None when refused (the tenant is then recorded as waiting). `cap`: the
    tenant's share; `pool`: the places of all tenants together (a tenant past its share may take one while the
    pool has room and no tenant waiting holds fewer; 0: never, the share is a fixed cap). `cap` 0 or less: no
    shares (a token is still returned, and releasing it is harmless)."""
    token = uuid.uuid4().hex
    redis = redis_client()
    if cap <= 0 or redis is None:
        return token
    backend, client = redis
    places, waiting = _keys(kind)
    try:
        taken = client.eval(
            _TAKE,
            2,
            backend.make_and_validate_key(places),
            backend.make_and_validate_key(waiting),
            tenant,
            _member(tenant, token, what),
            cap,
            pool,
            lease_seconds,
            WAITING_LEASE_SECONDS,
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
        client.eval(
            _RENEW,
            1,
            backend.make_and_validate_key(_keys(kind)[0]),
            _member(tenant, token, what),
            lease_seconds,
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
        client.zrem(backend.make_and_validate_key(_keys(kind)[0]), _member(tenant, token, what))
    except Exception as exc:
        logger.warning("Fair shares unavailable (%s).", exc.__class__.__name__)


def share_holders(*, kind: str, tenant: str) -> list[str]:
    """What the tasks holding a place of `tenant` do (`what` of each place not lapsed)."""
    redis = redis_client()
    if redis is None:
        return []
    backend, client = redis
    try:
        seconds, micros = client.time()  # Redis's clock: the leases are on it
        members = client.zrangebyscore(
            backend.make_and_validate_key(_keys(kind)[0]), seconds + micros / 1_000_000, "+inf"
        )
    except Exception as exc:
        logger.warning("Fair shares unavailable (%s).", exc.__class__.__name__)
        return []
    prefix = f"{tenant}|"
    return [_text(m)[len(prefix) :].partition("|")[2] for m in members if _text(m).startswith(prefix)]


def share_hand_over(*, kind: str, queue_waiting: Callable[[str, bool], bool], freed_by: str = "") -> None:
    """After a task of `freed_by` gave its place back: offers the pool's free places to the tenants waiting for one
    (refused earlier: only they have work waiting for a place), fewest places first. `queue_waiting(t, alone)`
    queues t's oldest waiting work, each piece in a place it takes (`share_take`), until one is refused or t has
    none left; it returns whether t has work left waiting. `alone`: t is `freed_by`, and no other tenant holds a
    place or waits for one, so the task that freed the place may take the first piece on itself instead of
    queuing a task for it (nobody else's work waits behind it). A tenant found with none is no longer waiting;
    the first refusal ends the hand-over (the pool is full again: the next freed place goes on)."""
    redis = redis_client()
    if redis is None:
        return
    backend, client = redis
    places, waiting = _keys(kind)
    try:
        flat = client.eval(
            _TURNS,
            2,
            backend.make_and_validate_key(places),
            backend.make_and_validate_key(waiting),
            freed_by,
        )
    except Exception as exc:  # the sweep queues what waits
        logger.warning("Fair shares unavailable (%s).", exc.__class__.__name__)
        return
    others = int(flat[0])
    turns = [(_text(flat[i]), int(flat[i + 1]), _text(flat[i + 2])) for i in range(1, len(flat), 3)]
    alone = bool(freed_by) and others == 0 and {tenant for tenant, _, _ in turns} == {freed_by}
    # Fewest places first; among equals, the longest waiting (Redis lists them so; the sort is stable).
    for tenant, _, score in sorted(turns, key=lambda turn: turn[1]):
        if queue_waiting(tenant, alone):
            return
        # Found with nothing waiting: no longer waiting, unless refused again since it was read (its work stored
        # meanwhile would otherwise wait for a sweep: no hand-over would offer it a place).
        try:
            client.eval(_UNWAIT, 1, backend.make_and_validate_key(waiting), tenant, score)
        except Exception as exc:
            logger.warning("Fair shares unavailable (%s).", exc.__class__.__name__)


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
