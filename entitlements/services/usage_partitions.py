"""The monthly partitions of the usage-event table (PostgreSQL, migration 0017): made ahead of time
(`usage_partitions_create_ahead`, beat task and command) and on demand before an insert into a month that has none
(`usage_partitions_ensure`), and dropped whole by retention (`usage_partitions_drop`) — never a month holding usage
of a period still open or not yet reported to Stripe.

A month is `[first day 00:00 UTC, first day of the next month)`, its table `entitlements_usageevent_pYYYY_MM`. The
default partition (`entitlements_usageevent_default`) takes whatever has no month yet, so an insert never fails;
making a month moves its rows out of the default one first. Two processes making the same month serialize on an
advisory lock and the second finds it made. On SQLite the table is plain and these do nothing.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_record
from entitlements.models import UsageCounter, UsageEvent, UsageEventKey, UsageMeterTotal, UsagePartitionDrop
from entitlements.services.meter_totals import TotalKey, meter_totals_add

TABLE = UsageEvent._meta.db_table
DEFAULT = f"{TABLE}_default"
_LOCK_CLASS = (
    0x7573_6167  # "usag": the advisory-lock namespace of partition DDL (the month is the second key)
)
# A period keeps taking late usage this long after it ends at most (the largest `usage_grace_seconds` the
# settings API accepts): until then it is not closed, and its months stay.
LATE_USAGE_MAX = timedelta(days=7)
# Months known to exist in this process (added once the transaction that saw or made them committed), so the
# insert path checks a set, not the catalog.
_known: set[date] = set()
_uncommitted: set[date] = set()  # made by a transaction of this process that has not committed (yet)


def partitioned() -> bool:
    """Whether the usage-event table is split by month (PostgreSQL after migration 0017)."""
    return connection.vendor == "postgresql"


def month_of(moment: datetime) -> date:
    moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


def month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{TABLE}_p{month:%Y_%m}"


def _bound(month: date) -> str:
    return f"{month:%Y-%m-%d} 00:00:00+00"


def usage_partitions_list() -> list[tuple[date, str]]:
    """(month, table) of each monthly partition, oldest first (the default one is not listed)."""
    if not partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass AND c.relname LIKE %s ORDER BY c.relname",
            [TABLE, f"{TABLE}_p%"],
        )
        names = [row[0] for row in cursor.fetchall()]
    return [(date(int(name[-7:-3]), int(name[-2:]), 1), name) for name in names]


def usage_partitions_ensure(*, months: Iterable[date]) -> list[date]:
    """Makes each month's partition that does not exist yet; returns the months made. Race-safe: a missing month
    is made under an advisory lock, after checking again once it is held."""
    if not partitioned():
        return []
    missing = sorted(set(months) - _known)
    if not missing:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NOT NULL",
            [[partition_name(month) for month in missing]],
        )
        existing = {row[0] for row in cursor.fetchall()}
    found = {month for month in missing if partition_name(month) in existing}
    _known.update(found - _uncommitted)  # one this transaction made is known once it commits
    missing = [month for month in missing if month not in found]
    if not missing:
        return []
    made: list[date] = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            for month in missing:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, month.year * 100 + month.month]
                )
                cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition_name(month)])
                if not cursor.fetchone()[0]:
                    _partition_make(cursor, month)
                    made.append(month)
        _uncommitted.update(made)

        def committed() -> None:
            _known.update(missing)
            _uncommitted.difference_update(made)

        transaction.on_commit(committed)
    return made


def _partition_make(cursor: object, month: date) -> None:
    """Makes one month's partition: a table like the parent, filled with the month's rows the default partition
    holds (taken out of it under an exclusive lock, so none slips in meanwhile), then attached."""
    name, lower, upper = partition_name(month), _bound(month), _bound(month_add(month, 1))
    run = cursor.execute  # type: ignore[attr-defined]
    run(f"LOCK TABLE {DEFAULT} IN ACCESS EXCLUSIVE MODE")
    run(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    run(
        f'WITH moved AS (DELETE FROM {DEFAULT} WHERE "timestamp" >= %s AND "timestamp" < %s RETURNING *) '  # noqa: S608
        f"INSERT INTO {name} SELECT * FROM moved",
        [lower, upper],
    )
    run(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM ('{lower}') TO ('{upper}')")


def usage_partitions_create_ahead(*, months_ahead: int, now: datetime | None = None) -> list[date]:
    """Makes the partitions of the current month and the `months_ahead` following ones; returns those made."""
    current = month_of(now or timezone.now())
    return usage_partitions_ensure(months=[month_add(current, n) for n in range(months_ahead + 1)])


@dataclass
class PartitionVerdict:
    """What retention decided about one month: dropped (or would be, on a dry run) or kept, and why."""

    month: date
    table: str
    events: int = 0
    keys: int = 0
    refused: list[str] = field(default_factory=list)

    @property
    def droppable(self) -> bool:
        return not self.refused


def usage_partitions_drop(
    *, older_than_months: int, actor: Actor, dry_run: bool = False, now: datetime | None = None
) -> list[PartitionVerdict]:
    """Drops the whole partitions of the months that ended more than `older_than_months` (≥ 1) months before the
    current month began, with their events' keys, each in its own transaction with an audit row and a
    `UsagePartitionDrop`. A month is kept (its verdict says why) while it holds usage of a period not closed (not
    ended, or ended less than `LATE_USAGE_MAX` ago: late usage may still come), or usage not yet reported to
    Stripe (pending or failed). `dry_run`: decides and changes nothing."""
    if older_than_months < 1:
        raise ValueError("older_than_months must be at least 1.")
    now = now or timezone.now()
    cutoff = month_add(month_of(now), -older_than_months)
    verdicts = []
    for month, table in usage_partitions_list():
        if month_add(month, 1) > cutoff:
            continue
        with connection.cursor() as cursor:
            verdict = _verdict(cursor, month, table, now)
        if verdict.droppable and not dry_run:
            with transaction.atomic(durable=True), connection.cursor() as cursor:
                # The parent first (as every insert and report takes it): nothing reaches the month while it is
                # judged again and dropped. Never wait long for it.
                cursor.execute("SET LOCAL lock_timeout = '10s'")
                cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
                verdict = _verdict(cursor, month, table, now)
                if verdict.droppable:
                    _drop(cursor, verdict, actor)
        verdicts.append(verdict)
    return verdicts


def _verdict(cursor: object, month: date, table: str, now: datetime) -> PartitionVerdict:
    run = cursor.execute  # type: ignore[attr-defined]
    verdict = PartitionVerdict(month=month, table=table)
    run(
        f"SELECT count(*), count(*) FILTER (WHERE meter_status IN (%s, %s)) FROM {table}",  # noqa: S608
        [UsageEvent.MeterStatus.PENDING, UsageEvent.MeterStatus.FAILED],
    )
    verdict.events, unreported = cursor.fetchone()  # type: ignore[attr-defined]
    if unreported:
        verdict.refused.append(f"{unreported} event(s) not reported to Stripe yet (pending or failed)")
    # Periods not closed that this month's usage counts in: the counters of periods starting before the month
    # ends, ending after now less the longest late-usage window, with an event of theirs here.
    counters = connection.ops.quote_name(UsageCounter._meta.db_table)
    run(
        f"SELECT count(*) FROM {counters} c WHERE c.period_end > %s AND c.period_start < %s AND EXISTS ("  # noqa: S608
        f"SELECT 1 FROM {table} e WHERE e.customer_id = c.customer_id AND e.feature_id = c.feature_id "
        "AND e.period_start = c.period_start)",
        [now - LATE_USAGE_MAX, _bound(month_add(month, 1))],
    )
    (open_periods,) = cursor.fetchone()  # type: ignore[attr-defined]
    if open_periods:
        verdict.refused.append(
            f"usage of {open_periods} period(s) not closed (open, or ended less than 7 days ago: late usage)"
        )
    return verdict


def _drop(cursor: object, verdict: PartitionVerdict, actor: Actor) -> None:
    run = cursor.execute  # type: ignore[attr-defined]
    keys = connection.ops.quote_name(UsageEventKey._meta.db_table)
    run(
        f"DELETE FROM {keys} k USING {verdict.table} e "  # noqa: S608
        "WHERE k.project_id = e.project_id AND k.event_id = e.event_id AND k.usage_event_id = e.id"
    )
    verdict.keys = cursor.rowcount  # type: ignore[attr-defined]
    # The month's events leave their periods' meter totals too, so the totals stay the sums of the events kept.
    run(
        "SELECT project_id, customer_id, feature_id, period_start, meter_status, sum(quantity) "  # noqa: S608
        f"FROM {verdict.table} WHERE meter_status <> '' AND period_start IS NOT NULL "
        "GROUP BY project_id, customer_id, feature_id, period_start, meter_status"
    )
    leaving: dict[str, dict[TotalKey, int]] = {}
    for project_id, customer_id, feature_id, start, status, total in cursor.fetchall():  # type: ignore[attr-defined]
        leaving.setdefault(project_id, {})[(customer_id, feature_id, start, status)] = -int(total)
    for project_id, changes in sorted(leaving.items()):
        meter_totals_add(project_id=project_id, changes=changes)
    UsageMeterTotal.objects.filter(quantity=0).delete()
    run(f"ALTER TABLE {TABLE} DETACH PARTITION {verdict.table}")
    run(f"DROP TABLE {verdict.table}")
    _known.discard(verdict.month)
    record = UsagePartitionDrop.objects.create(
        month=verdict.month, table=verdict.table, events=verdict.events, keys=verdict.keys
    )
    audit_record(
        actor=actor,
        action="usage_partition.drop",
        target=record,
        reason=f"usage events of {verdict.month:%Y-%m} past retention",
        after={"month": f"{verdict.month:%Y-%m}", "events": verdict.events, "keys": verdict.keys},
    )
