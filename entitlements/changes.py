"""The entitlement change feed: which customers' entitlements changed, in order, per project — what
`GET /entitlements/changes` answers, so that a client holding signed snapshots in memory (`tollgate_client.local`)
drops the ones a change made wrong within its poll interval.

A change is appended once the transaction that made it commits, in the same Redis call that moves the customer's
structure version (`structure_changed`, called by every service that changes what a customer may use): position n
of the feed names the customer of the n-th change. A reader asks for what came after the position it holds. Three things make it start over (`resync`): the feed's id is not
the one it held (the cache lost the feed, or was emptied), the positions it missed are more than
`MAX_CHANGES_PER_ANSWER` or have expired (`ENTRY_TTL_SECONDS`), or — read by the API beside the feed — the
project's answers version or the cache epoch moved (a catalog or settings change, a lost invalidation).

Stored in the shared cache, keys named as Django's cache names them:

    ent:chg:<project>:id    the feed's id: a random integer, new whenever the position counter starts again
    ent:chg:<project>:n     the position of the newest change (an integer)
    ent:chg:<project>:<n>   the external id of the customer of change n (raw UTF-8), for ENTRY_TTL_SECONDS

The id and the position are integers, which Django's Redis serializer stores as plain digits, so the API reads them
in the rate limiter's round trip (`feed_keys`). With Redis an append is one Lua call: the position moves and a
position counter that starts again (its key lost) gets a new feed id in the same step, so a reader can never take a
new feed for the one it held. Without Redis (the local-memory cache of a one-process demo or test run) the same
steps run under a process lock.

Reading the feed position *before* the database is what makes a snapshot safe to keep: a change committed after the
read is appended after it, so its position is past the snapshot's `version`, and the client drops the snapshot when
it sees it.
"""

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import transaction

from core.cache import VERSION_TTL_SECONDS, cache_epoch_bump, cache_unavailable, redis_client, version_store
from core.ids import random_token
from entitlements.cache import Keys

logger = logging.getLogger(__name__)

ENTRY_TTL_SECONDS = 3600
MAX_CHANGES_PER_ANSWER = 1000

# KEYS: id, position. ARGV: a new id, the TTL. A position counter that is not there starts a new feed (with a new
# id), as does a lost id: a reader holding the old one then starts over instead of taking positions anew.
_ENSURE = """
if redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('SET', KEYS[2], 0)
    redis.call('SET', KEYS[1], ARGV[1])
elseif redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
"""
# KEYS: id, position, entry prefix, the customers' version keys. ARGV: a new id, the entries' TTL, the id, position
# and version TTL, the customers' new version (as the cache serialises it), then the customers (one per version key).
_APPEND = (
    _ENSURE.replace("ARGV[2]", "ARGV[3]")
    + """
local count = #ARGV - 4
local last = redis.call('INCRBY', KEYS[2], count)
for i = 1, count do
    redis.call('SET', KEYS[3] .. (last - count + i), ARGV[i + 4], 'EX', ARGV[2])
    redis.call('SET', KEYS[i + 3], ARGV[4], 'EX', ARGV[3])
end
return last
"""
)
_ENSURE_READ = _ENSURE + "return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}\n"


def _id_key(project_id: str) -> str:
    return f"ent:chg:{project_id}:id"


def _position_key(project_id: str) -> str:
    return f"ent:chg:{project_id}:n"


def _entry_key(project_id: str, position: int) -> str:
    return f"ent:chg:{project_id}:{position}"


def feed_keys(project_id: str) -> list[str]:
    """The keys of the feed's id and position, as named for Django's cache API (the rate limiter reads them ahead)."""
    return [_id_key(project_id), _position_key(project_id)]


def _new_id() -> int:
    return secrets.randbits(62) + 1


@dataclass(frozen=True)
class Position:
    """Where the feed stands: its id and the position of its newest change (0: none yet)."""

    feed: int
    version: int


@dataclass(frozen=True)
class Changes:
    position: Position
    resync: bool
    customers: list[str]


# --- appending -------------------------------------------------------------------------------------------------

_local_lock = threading.Lock()
_scripts: dict[str, Any] = {}


def _script(client: Any, source: str) -> Any:
    script = _scripts.get(source)
    if script is None:
        script = _scripts.setdefault(source, client.register_script(source))
    return script


def _append(project_id: str, changed: dict[str, str]) -> None:
    """Moves each customer's version key (`changed`: external id → key) to a new token and appends the customers to
    the feed: with Redis in one script call, one round trip."""
    token = random_token(12)
    redis = redis_client()
    if redis is None:
        version_store.set_many(dict.fromkeys(changed.values(), token), VERSION_TTL_SECONDS)
        with _local_lock:
            last = _ensure_local(project_id).version
            for external_id in changed:
                last += 1
                cache.set(_entry_key(project_id, last), external_id, ENTRY_TTL_SECONDS)
            cache.set(_position_key(project_id), last, VERSION_TTL_SECONDS)
        return
    backend, client = redis
    _script(client, _APPEND)(
        keys=[
            backend.make_key(_id_key(project_id)),
            backend.make_key(_position_key(project_id)),
            backend.make_key(_entry_key(project_id, 0))[:-1],
            *(backend.make_key(key) for key in changed.values()),
        ],
        args=[
            _new_id(),
            ENTRY_TTL_SECONDS,
            VERSION_TTL_SECONDS,
            backend.client.encode(token),
            *changed,
        ],
        client=client,
    )


def _ensure(project_id: str) -> Position:
    """The feed's id and position, starting a feed (or a new id) when either is missing."""
    redis = redis_client()
    if redis is None:
        with _local_lock:
            return _ensure_local(project_id)
    backend, client = redis
    feed, version = _script(client, _ENSURE_READ)(
        keys=[backend.make_key(_id_key(project_id)), backend.make_key(_position_key(project_id))],
        args=[_new_id(), VERSION_TTL_SECONDS],
        client=client,
    )
    return Position(feed=int(feed), version=int(version))


def _ensure_local(project_id: str) -> Position:
    """`_ensure` in a cache without scripts (under the process lock)."""
    feed, version = cache.get(_id_key(project_id)), cache.get(_position_key(project_id))
    if version is None or feed is None:
        feed = _new_id()
        cache.set(_id_key(project_id), feed, VERSION_TTL_SECONDS)
        if version is None:
            version = 0
            cache.set(_position_key(project_id), version, VERSION_TTL_SECONDS)
    return Position(feed=int(feed), version=int(version))


def structure_changed(*, project_id: str, external_id: str) -> None:
    """What the customer may use changed. Once the current transaction commits (at once outside one), their
    structure version key gets a new token, so their cached answers stop being served, and they are appended to the
    feed, in one step (with Redis one script call). A step that cannot reach the cache bumps the cache epoch
    instead: no answer cached before it is served again, and every feed reader starts over."""
    changed = {external_id: Keys.structure_version_of(project_id, external_id)}

    def apply() -> None:
        try:
            _append(project_id, changed)
        except Exception as exc:
            cache_unavailable("version bump", exc)
            cache_epoch_bump(f"version bump failed ({exc.__class__.__name__})")

    transaction.on_commit(apply)


# --- reading ---------------------------------------------------------------------------------------------------


def feed_position(*, project_id: str, read_ahead: dict[str, Any] | None = None) -> Position:
    """The feed's id and newest position now (from `read_ahead` when it holds both), starting the feed if there is
    none yet, so that a reader's first position stays good after the first change."""
    keys = feed_keys(project_id)
    if read_ahead is not None and all(key in read_ahead for key in keys):
        got = read_ahead
    else:
        got = _read_many(keys)
    feed, version = got.get(keys[0]), got.get(keys[1])
    if feed is None or version is None:
        return _ensure(project_id)
    return Position(feed=int(feed), version=int(version))


def _read_many(keys: list[str]) -> dict[str, Any]:
    redis = redis_client()
    if redis is None:
        return dict(cache.get_many(keys))
    backend, client = redis
    values = client.mget([backend.make_key(key) for key in keys])
    return {key: value for key, value in zip(keys, values, strict=True) if value is not None}


def _entries(project_id: str, first: int, last: int) -> list[str] | None:
    """The customers of positions first…last, or None when one of them has expired."""
    keys = [_entry_key(project_id, position) for position in range(first, last + 1)]
    got = _read_many(keys)
    if len(got) != len(keys):
        return None
    return [_text(got[key]) for key in keys]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def changes_since(*, project_id: str, since: int, feed: int, position: Position) -> Changes:
    """The customers whose entitlements changed after position `since` of feed `feed`, one per change in order
    (a customer may be named more than once), given the feed's `position` now."""
    if feed != position.feed or since > position.version:
        return Changes(position, resync=True, customers=[])
    if since == position.version:
        return Changes(position, resync=False, customers=[])
    if position.version - since > MAX_CHANGES_PER_ANSWER:
        return Changes(position, resync=True, customers=[])
    customers = _entries(project_id, since + 1, position.version)
    if customers is None:
        return Changes(position, resync=True, customers=[])
    return Changes(position, resync=False, customers=customers)


POLL_STEP_SECONDS = 0.05


def position_wait(*, project_id: str, start: Position, seconds: float, moved: Any = None) -> Position:
    """Waits up to `seconds` for the feed to move past `start` (or for `moved()` to say something else moved),
    checking every POLL_STEP_SECONDS; returns where it stands then."""
    deadline = time.monotonic() + seconds
    position = start
    while time.monotonic() < deadline:
        time.sleep(POLL_STEP_SECONDS)
        position = feed_position(project_id=project_id)
        if position != start or (moved is not None and moved()):
            break
    return position
