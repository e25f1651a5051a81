"""The entitlement snapshot cache: a warm check is one `MGET` and no SQL — read in the rate limiter's round trip
when the API asks for it (`snapshot_keys`, `read_ahead`).

Keys (one customer = the tenant's external id, hashed so any id makes a valid key):

    ent:pv:<project>                 project version (catalog or default product changed)
    ent:sv:<project>:<customer>      structure version (subscription, purchase, grant, revocation, refund …)
    ent:s:<project>:<customer>       structure snapshot, tagged "<pv>:<sv>" it was computed under
    ent:uv:<project>:<customer>      usage version (usage, consume, release, credit movements)
    ent:u2:<project>:<customer>      usage snapshot, tagged with <uv> and the structure snapshot's `gen` ("u2": since
                                     holds, a usage snapshot carries `held`; older ones are never read)

All five are read with one `MGET`. A snapshot is served only when its tag equals the current versions and its
`valid_until` (the next expiry, trial or grace end, or period rollover) has not passed, so answers change on
time without any write. Every write bumps a version to a new random token *on commit*: the version is read
before the database is, so a snapshot computed concurrently with a change carries the old tag and is never
served after the change. Versions are random rather than incremented so a lost key cannot bring an old tag
back. With the cache unreachable, answers are computed from the database, logged and counted
(`tollgate_entitlement_cache_fallbacks_total`), never a 500.
"""

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from core.cache import (
    VERSION_TTL_SECONDS,
    bump_on_commit,
    cache_epoch,
    cache_unavailable,
    version_store,
)
from core.ids import random_token
from customers.models import Customer
from entitlements import resolver, usage_read
from entitlements.snapshot import StructureSnapshot, UsageSnapshot
from projects.models import Project
from projects.versions import project_version_key

logger = logging.getLogger(__name__)

SNAPSHOT_TTL_SECONDS = resolver.MAX_SNAPSHOT_AGE_SECONDS


def _customer_part(external_id: str) -> str:
    return hashlib.blake2b(external_id.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True)
class Keys:
    project: str
    structure_version: str
    structure: str
    usage_version: str
    usage: str

    @classmethod
    def of(cls, project_id: str, external_id: str) -> "Keys":
        part = f"{project_id}:{_customer_part(external_id)}"
        return cls(
            project_version_key(project_id),
            f"ent:sv:{part}",  # = structure_version_of
            f"ent:s:{part}",
            f"ent:uv:{part}",
            f"ent:u2:{part}",
        )

    @staticmethod
    def structure_version_of(project_id: str, external_id: str) -> str:
        """`of(…).structure_version` alone (what a change bumps), without the other keys."""
        return f"ent:sv:{project_id}:{_customer_part(external_id)}"

    def all(self) -> list[str]:
        return [self.project, self.structure_version, self.structure, self.usage_version, self.usage]

    def read(self, with_usage: bool) -> list[str]:
        """What a snapshot read fetches: all five, or the structure's three."""
        return self.all() if with_usage else self.all()[:3]


def _read(keys: list[str]) -> dict[str, Any] | None:
    """One MGET; None when the cache is unreachable (logged at most once a minute, always counted)."""
    try:
        return version_store.get_many(keys)
    except Exception as exc:  # any backend error: ConnectionError, TimeoutError, OSError …
        cache_unavailable("read", exc)
        return None


def _write(items: dict[str, Any], timeout: float) -> None:
    try:
        version_store.set_many(items, timeout)
    except Exception as exc:
        cache_unavailable("write", exc)


def _version_ensure(key: str, current: Any) -> str:
    """The current version token of `key`, creating one when there is none yet."""
    if current:
        return str(current)
    token = random_token(12)
    try:
        if version_store.add(key, token, VERSION_TTL_SECONDS):
            return token
        existing = version_store.get_many([key]).get(key)
    except Exception as exc:
        cache_unavailable("version", exc)
        return token
    return str(existing) if existing else token


def usage_changed(*, project_id: str, external_ids: list[str]) -> None:
    bump_on_commit([Keys.of(project_id, external_id).usage_version for external_id in external_ids])


@dataclass
class Snapshot:
    structure: StructureSnapshot
    usage: UsageSnapshot  # an empty dict when read `with_usage=False` (never read then)
    cached: bool  # served from the cache without any SQL


def _no_usage() -> UsageSnapshot:
    """The usage of a snapshot read `with_usage=False`: an empty dict, as before, that no caller reads (consume and
    usage ingestion count in SQL); the one cast that is not a cache boundary."""
    return cast(UsageSnapshot, {})


def _customer(project: Project, external_id: str) -> tuple[str | None, Customer | None]:
    # With its test clock, if any: the resolver judges a clock's customer at the clock's time (`customer_now`).
    customer = (
        Customer.objects.filter(project=project, external_id=external_id).select_related("test_clock").first()
    )
    return (customer.pk if customer else None), customer


def structure_fresh(*, project: Project, external_id: str) -> StructureSnapshot:
    """The customer's structure computed from the database, whatever the cache holds: for a writer that found the
    cached one older than the catalog it checked (a feature created a moment ago, whose version bump is still on
    its way), so that it never acts on an answer that lacks it."""
    _, customer = _customer(project, external_id)
    return resolver.resolve_structure(project=project, customer=customer, now=datetime.now(UTC))


def snapshot_keys(*, project_id: str, external_id: str, with_usage: bool = True) -> list[str]:
    """The keys `snapshot_get` reads: the three versions and the snapshots (the structure alone without usage)."""
    return Keys.of(project_id, external_id).read(with_usage)


def snapshot_get(
    *,
    project: Project,
    external_id: str,
    with_usage: bool = True,
    read_ahead: dict[str, Any] | None = None,
) -> Snapshot:
    """The customer's structure and usage snapshots: from the cache when current, else from the database.
    `with_usage=False` (consume and usage ingestion, which count in SQL anyway) reads the structure only.
    `read_ahead`: values of `snapshot_keys` already fetched this request (the rate limiter's round trip), used
    instead of a read of its own when it holds every key."""
    return snapshots_get(
        project=project, external_ids=[external_id], with_usage=with_usage, read_ahead=read_ahead
    )[external_id]


def snapshots_get(
    *,
    project: Project,
    external_ids: list[str],
    with_usage: bool = True,
    read_ahead: dict[str, Any] | None = None,
) -> dict[str, Snapshot]:
    """`snapshot_get` for several customers with one MGET (a usage batch names up to 1,000)."""
    all_keys = {external_id: Keys.of(project.pk, external_id) for external_id in external_ids}
    wanted = [key for keys in all_keys.values() for key in keys.read(with_usage)]
    if read_ahead is not None and all(key in read_ahead for key in wanted):
        got: dict[str, Any] | None = read_ahead
    else:
        got = _read(wanted)
    now_ts = time.time()
    now = datetime.fromtimestamp(now_ts, UTC)
    if got is None:
        answers = {}
        for external_id in external_ids:
            customer_id, customer = _customer(project, external_id)
            computed = resolver.resolve_structure(project=project, customer=customer, now=now)
            usage = (
                usage_read.resolve_usage(customer_id=customer_id, structure=computed, now=now)
                if with_usage
                else _no_usage()
            )
            answers[external_id] = Snapshot(computed, usage, cached=False)
        return answers
    epoch = cache_epoch()
    return {
        external_id: _snapshot(project, external_id, keys, got, now_ts, now, with_usage, epoch)
        for external_id, keys in all_keys.items()
    }


def _snapshot(
    project: Project,
    external_id: str,
    keys: Keys,
    got: dict[str, Any],
    now_ts: float,
    now: datetime,
    with_usage: bool,
    epoch: int,
) -> Snapshot:
    # Where the JSON read back from the cache enters the program: typed as what `resolver` wrote (the tag and
    # `valid_until` checks below decide whether it is served; a stale shape is never, its tag being old).
    structure = cast(StructureSnapshot | None, got.get(keys.structure))
    usage = cast(UsageSnapshot | None, got.get(keys.usage))
    cached = True
    project_version = got.get(keys.project)
    structure_version = got.get(keys.structure_version)
    if not (
        structure is not None
        and project_version
        and structure_version
        and structure.get("tag") == f"{epoch}:{project_version}:{structure_version}"
        and now_ts < structure["valid_until"]
    ):
        cached = False
        # The versions are read before the database: a change committed meanwhile bumps them past this tag.
        tag = (
            f"{epoch}:{_version_ensure(keys.project, project_version)}:"
            f"{_version_ensure(keys.structure_version, structure_version)}"
        )
        _, customer = _customer(project, external_id)
        structure = resolver.resolve_structure(project=project, customer=customer, now=now)
        structure["tag"] = tag
        structure["gen"] = random_token(8)
        _write({keys.structure: structure}, SNAPSHOT_TTL_SECONDS)
    if not with_usage:
        return Snapshot(structure, _no_usage(), cached=cached)
    usage_version = got.get(keys.usage_version)
    if not (
        usage is not None
        and usage_version
        and usage.get("tag") == f"{epoch}:{usage_version}"
        and usage.get("gen") == structure["gen"]
        and (usage["valid_until"] is None or now_ts < usage["valid_until"])
    ):
        cached = False
        usage_version = _version_ensure(keys.usage_version, usage_version)
        customer_id, _ = _customer(project, external_id)
        usage = usage_read.resolve_usage(customer_id=customer_id, structure=structure, now=now)
        usage["tag"] = f"{epoch}:{usage_version}"
        usage["gen"] = structure["gen"]
        _write({keys.usage: usage}, SNAPSHOT_TTL_SECONDS)
    return Snapshot(structure, usage, cached=cached)


def answers_version(*, project_id: str, read_ahead: dict[str, Any] | None = None) -> str:
    """`<epoch>:<project version>`: what every cached answer of the project is tagged with besides its customer's
    own version (the `answers` of a local snapshot and of the change feed). Empty when the cache is unreachable."""
    key = project_version_key(project_id)
    if read_ahead is not None and key in read_ahead:
        got: dict[str, Any] | None = read_ahead
    else:
        got = _read([key])
    if got is None:
        return ""
    return f"{cache_epoch()}:{_version_ensure(key, got.get(key))}"


def snapshot_answers_version(structure: StructureSnapshot) -> str:
    """The `answers_version` a structure snapshot was computed under (empty when computed without the cache)."""
    tag = structure.get("tag")
    return tag.rsplit(":", 1)[0] if tag else ""
