"""Atomic SQL on usage events and counters: bulk event inserts that skip ids already recorded, counters
changed only through one conditional statement (`UPDATE … SET used = used + n WHERE … AND used + n <= limit
RETURNING used`), allocation moves within their limit, and on PostgreSQL the one call of
`tollgate_metered_consume` (migration 0005) that records a metered consume. Limits hold under concurrency
because counters change only here.
"""

import json
from collections.abc import Collection, Iterable, Iterator
from datetime import datetime
from typing import Any

import psycopg
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from entitlements import resolver
from entitlements.account_cap import cap_bound
from entitlements.models import AllocationCounter, ThresholdCrossing, UsageCounter, UsageEvent, UsageEventKey
from entitlements.services.meter_totals import meter_totals_add, meter_totals_of_rows
from entitlements.services.usage_partitions import month_of, usage_partitions_ensure
from entitlements.snapshot import FeatureEntry

THRESHOLDS = (0.8, 1.0)
CAP_LABEL = "cap"  # the spend cap's mark among the usage thresholds (`usage_marks`)


def counted_cap(entry: FeatureEntry) -> int | None:
    """The most a counter may reach: the limit; where use may go past it (`overage`), the bound of the spend caps
    that block there (`account_cap.cap_bound`: the feature's own, `attach.caps_attach`, and the account cap's
    judged under its lock; without a limit, a blocking account cap's alone), else none (None)."""
    if not entry.get("overage") and entry["limit"] is not None:
        return entry["limit"]
    return cap_bound(entry)


def usage_marks(entry: FeatureEntry) -> list[tuple[str, float]]:
    """(label, units used) of each usage threshold of a metered feature: 80 % and 100 % of its limit (labels
    "0.8", "1.0"), and the tenant's own (`entry["thresholds"]`: [id, "percent" | "quantity", value]; a percent
    needs a limit), lowest first."""
    limit = entry["limit"]
    marks = [(str(threshold), limit * threshold) for threshold in THRESHOLDS] if limit else []
    for threshold_id, kind, value in entry.get("thresholds", []):
        if kind == "quantity":
            marks.append((threshold_id, float(value)))
        elif limit:
            marks.append((threshold_id, limit * value / 100))
    cap = entry.get("cap")
    if cap is not None and cap["limit"] is not None:
        marks.append((CAP_LABEL, float(cap["limit"])))  # `usage.cap_reached`
    return sorted(marks, key=lambda mark: mark[1])


_EVENT_COLUMNS = (
    "id",
    "project_id",
    "customer_id",
    "feature_id",
    "event_id",
    "kind",
    "quantity",
    "timestamp",
    "period_start",
    "properties",
    "meter_status",
    "meter_attempts",
    "meter_next_attempt_at",
    "meter_error",
    "created_at",
    "dimensions",
    "cost_micros",
)


def _db_time(moment: datetime | None) -> Any:
    return connection.ops.adapt_datetimefield_value(moment) if moment is not None else None


# `_events_insert_pg` claiming keys one by one: the keys' columns, each passed as one JSON array, read back by
# `json_array_elements_text` and zipped by `ROWS FROM`.
_KEY_COLUMNS = ("project_id", "event_id", "customer_id", "id", "timestamp")
_KEY_ARRAYS = ", ".join(["json_array_elements_text(%s::json)"] * len(_KEY_COLUMNS))


def _json_column(rows: list[dict[str, Any]], column: str) -> str:
    """One column of the rows as a JSON array (times in ISO 8601, each distinct time formatted once)."""
    values = [row[column] for row in rows]
    if column == "timestamp":
        formatted = {value: value.isoformat() for value in set(values)}
        values = [formatted[value] for value in values]
    return json.dumps(values)


def _json_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_JSON = json.JSONEncoder(
    default=_json_time
)  # one encoder for every row (`json.dumps(default=…)` makes one each)


class _Times(dict[datetime, str]):
    """Times as ISO 8601 text for `COPY`, each distinct time formatted once (psycopg's datetime adapter costs more
    per row than the rest of the row)."""

    def __missing__(self, moment: datetime) -> str:
        self[moment] = moment.isoformat()
        return self[moment]

    def text(self, moment: datetime | None) -> str | None:
        return None if moment is None else self[moment]


def _key_values(rows: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    times = _Times()
    for row in rows:
        yield row["project_id"], row["event_id"], row["customer_id"], row["id"], times[row["timestamp"]]


def _properties_text(properties: dict[str, Any] | None, seen: dict[Any, str]) -> str:
    """An event's properties as JSON text. A batch's events mostly carry the same flat properties: those are
    encoded once per distinct value (their items as the key; a nested value is not hashable and is encoded)."""
    if not properties:
        return "{}"
    try:
        key = tuple(properties.items())
        text = seen.get(key)
        if text is None:
            text = seen[key] = _JSON.encode(properties)
    except TypeError:
        return _JSON.encode(properties)
    return text


def _event_values(rows: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    """The rows in `_EVENT_COLUMNS` order, the two columns every new event starts with as constants."""
    times = _Times()
    seen: dict[Any, str] = {}
    for row in rows:
        yield (
            row["id"],
            row["project_id"],
            row["customer_id"],
            row["feature_id"],
            row["event_id"],
            row["kind"],
            row["quantity"],
            times[row["timestamp"]],
            times.text(row["period_start"]),
            _properties_text(row["properties"], seen),
            row["meter_status"],
            0,
            times.text(row["meter_next_attempt_at"]),
            row.get("meter_error", ""),
            times[row["created_at"]],
            _JSON.encode(row["dimensions"]) if row.get("dimensions") else None,
            row.get("cost_micros"),
        )


def _copy(cursor: Any, statement: str, values: Iterable[tuple[Any, ...]]) -> None:
    """PostgreSQL `COPY … FROM STDIN` of `values` on the cursor's connection (so in its transaction). Django does
    not see it in `connection.queries`."""
    with cursor.copy(statement) as copy:
        for value in values:
            copy.write_row(value)


def _events_insert_pg(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """PostgreSQL: the keys first, by `COPY` (the cheapest insert: no per-row conflict check), then the events
    whose keys were claimed, by `COPY` too; the months they touch get their partitions first
    (`usage_partitions_ensure`: a set lookup once they exist). A key the project already has (a retried event)
    fails the keys' `COPY`: it is rolled back to its savepoint and the keys claimed one by one instead, by one
    `INSERT … ON CONFLICT DO NOTHING` whose rows travel as one JSON array per column (built by `json.dumps` in C;
    psycopg's array adapters loop in Python), which returns the keys it claimed. In `_events_insert`'s
    transaction. Returns the rows inserted."""
    usage_partitions_ensure(months={month_of(moment) for moment in {row["timestamp"] for row in rows}})
    table = connection.ops.quote_name(UsageEvent._meta.db_table)
    keys = connection.ops.quote_name(UsageEventKey._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _EVENT_COLUMNS)
    key_columns = 'project_id, event_id, customer_id, usage_event_id, "timestamp"'
    with connection.cursor() as cursor:
        try:
            with transaction.atomic():
                _copy(cursor, f"COPY {keys} ({key_columns}) FROM STDIN", _key_values(rows))
        except psycopg.errors.UniqueViolation:
            cursor.execute(
                f"INSERT INTO {keys} ({key_columns}) "  # noqa: S608
                f'SELECT project_id, event_id, customer_id, id, "timestamp"::timestamptz '
                f'FROM ROWS FROM ({_KEY_ARRAYS}) AS t(project_id, event_id, customer_id, id, "timestamp") '
                "ON CONFLICT (project_id, event_id) DO NOTHING RETURNING usage_event_id",
                [_json_column(rows, column) for column in _KEY_COLUMNS],
            )
            claimed = {r[0] for r in cursor.fetchall()}
            rows = [row for row in rows if row["id"] in claimed]
        if rows:
            _copy(cursor, f"COPY {table} ({columns}) FROM STDIN", _event_values(rows))
    return rows


def _events_insert(rows: list[dict[str, Any]]) -> set[str]:
    """Inserts usage events, skipping ids the project already has; returns the tenant ids actually inserted.

    Each event claims its key (`UsageEventKey`, unique per project across every month) and only the events whose
    key was claimed are inserted. A concurrent insert of the same id waits on the key's index entry, then skips
    it. Rows go in key order, so two batches sharing ids never wait on each other crosswise. The events a Stripe
    meter bills add to their period's totals (`meter_totals`) in the same transaction. On PostgreSQL see
    `_events_insert_pg`."""
    if not rows:
        return set()
    rows = sorted(rows, key=lambda row: row["event_id"])
    with transaction.atomic(savepoint=False):
        inserted = (
            _events_insert_pg(rows) if connection.vendor == "postgresql" else _events_insert_sqlite(rows)
        )
        by_project: dict[str, list[dict[str, Any]]] = {}
        for row in inserted:
            if row["meter_status"]:
                by_project.setdefault(row["project_id"], []).append(row)
        for project_id, metered in sorted(by_project.items()):
            meter_totals_add(project_id=project_id, changes=meter_totals_of_rows(metered))
    return {row["event_id"] for row in inserted}


def _events_insert_sqlite(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SQLite: keys claimed and events inserted 500 at a time, by `INSERT`; returns the rows inserted."""
    table = connection.ops.quote_name(UsageEvent._meta.db_table)
    keys = connection.ops.quote_name(UsageEventKey._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _EVENT_COLUMNS)
    placeholders = "(" + ", ".join(["%s"] * len(_EVENT_COLUMNS)) + ")"
    inserted: list[dict[str, Any]] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            part = rows[start : start + 500]
            cursor.execute(
                f'INSERT INTO {keys} (project_id, event_id, customer_id, usage_event_id, "timestamp") '  # noqa: S608
                f"VALUES {', '.join(['(%s, %s, %s, %s, %s)'] * len(part))} "
                "ON CONFLICT (project_id, event_id) DO NOTHING RETURNING usage_event_id",
                [
                    v
                    for row in part
                    for v in (
                        row["project_id"],
                        row["event_id"],
                        row["customer_id"],
                        row["id"],
                        _db_time(row["timestamp"]),
                    )
                ],
            )
            claimed = {r[0] for r in cursor.fetchall()}
            part = [row for row in part if row["id"] in claimed]
            if not part:
                continue
            params: list[Any] = []
            for row in part:
                full = {
                    **row,
                    "properties": json.dumps(row["properties"]),
                    "meter_attempts": 0,
                    "meter_error": row.get("meter_error", ""),
                    "dimensions": json.dumps(row["dimensions"]) if row.get("dimensions") else None,
                    "cost_micros": row.get("cost_micros"),
                }
                params += [
                    _db_time(full[c]) if isinstance(full[c], datetime) else full[c] for c in _EVENT_COLUMNS
                ]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholders] * len(part))}",  # noqa: S608
                params,
            )
            inserted += part
    return inserted


def usage_keys_recorded(*, project_id: str, event_ids: list[str]) -> set[str]:
    """Which of these tenant ids the project has recorded already (one indexed query; none for no ids)."""
    if not event_ids:
        return set()
    return set(
        UsageEventKey.objects.filter(project_id=project_id, event_id__in=event_ids).values_list(
            "event_id", flat=True
        )
    )


def usage_events_of(*, project_id: str, event_ids: Iterable[str]) -> QuerySet[UsageEvent]:
    """The usage events of these tenant ids in the project, found through their keys: by primary key and, on
    PostgreSQL, timestamp, so each is read from its own month's partition."""
    located = UsageEventKey.objects.filter(project_id=project_id, event_id__in=list(event_ids)).values_list(
        "usage_event_id", "timestamp"
    )
    partitioned = connection.vendor == "postgresql"
    condition = Q()
    for pk, timestamp in located:
        condition |= Q(pk=pk, timestamp=timestamp) if partitioned else Q(pk=pk)
    return (
        UsageEvent.objects.filter(condition, project_id=project_id)
        if condition
        else UsageEvent.objects.none()
    )


def usage_id_reused(
    *, project_id: str, uses: dict[str, tuple[str, str, int, str | None]], kinds: Collection[str]
) -> str | None:
    """The first of these tenant ids (each with the customer id, feature id, quantity and entity, or None, it is
    used for now) that the project already recorded for another use: another customer, feature, quantity or
    entity (`properties.entity`, Tollgate's), or a kind outside `kinds`. An id repeated for the same use is a
    retry (None)."""
    stored = usage_events_of(project_id=project_id, event_ids=uses).values_list(
        "event_id", "customer_id", "feature_id", "quantity", "properties__entity", "kind"
    )
    for event_id, customer_id, feature_id, quantity, entity, kind in stored:
        if (customer_id, feature_id, quantity, entity or None) != uses[event_id] or kind not in kinds:
            return str(event_id)
    return None


def _counters_add(
    project_id: str, additions: dict[tuple[str, str, datetime], tuple[datetime, int]]
) -> dict[tuple[str, str, datetime], int]:
    """Adds to period counters in one upsert, in key order (two batches sharing counters never wait on each other
    crosswise); returns each counter's new `used`. On PostgreSQL the rows travel as one JSON array per column, as
    `_events_insert_pg`'s keys do."""
    if not additions:
        return {}
    table = connection.ops.quote_name(UsageCounter._meta.db_table)
    now = _db_time(timezone.now())
    ordered = sorted(additions.items(), key=lambda item: item[0])
    keys: dict[tuple[str, str, Any], tuple[str, str, datetime]] = {
        (customer_id, feature_id, _db_time(start)): (customer_id, feature_id, start)
        for (customer_id, feature_id, start), _ in ordered
    }
    upsert = (
        f"ON CONFLICT (customer_id, feature_id, period_start) DO UPDATE "
        f"SET used = {table}.used + excluded.used, updated_at = excluded.updated_at "
        "RETURNING customer_id, feature_id, period_start, used"
    )
    columns = f"INSERT INTO {table} (project_id, customer_id, feature_id, period_start, period_end, used, updated_at) "
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"{columns}SELECT %s, customer_id, feature_id, period_start::timestamptz, period_end::timestamptz, "  # noqa: S608
                f"used::bigint, %s FROM ROWS FROM ({', '.join(['json_array_elements_text(%s::json)'] * 5)}) "
                f"AS t(customer_id, feature_id, period_start, period_end, used) {upsert}",
                [
                    project_id,
                    now,
                    json.dumps([customer_id for (customer_id, _, _), _ in ordered]),
                    json.dumps([feature_id for (_, feature_id, _), _ in ordered]),
                    json.dumps([start.isoformat() for (_, _, start), _ in ordered]),
                    json.dumps([end.isoformat() for _, (end, _) in ordered]),
                    json.dumps([amount for _, (_, amount) in ordered]),
                ],
            )
        else:
            params: list[Any] = []
            for (customer_id, feature_id, start), (end, amount) in ordered:
                params += [project_id, customer_id, feature_id, _db_time(start), _db_time(end), amount, now]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(ordered))
            cursor.execute(f"{columns}VALUES {values} {upsert}", params)
        rows = cursor.fetchall()
    result: dict[tuple[str, str, datetime], int] = {}
    for customer_id, feature_id, start, used in rows:
        key = keys.get((customer_id, feature_id, _db_time(start) if isinstance(start, datetime) else start))
        if key is not None:
            result[key] = int(used)
    return result


def _counter_take(
    *,
    project_id: str,
    customer_id: str,
    feature_id: str,
    period: resolver.Period,
    quantity: int,
    limit: int | None,
    hold: bool = False,
) -> tuple[int, int] | None:
    """used += quantity if that stays within `limit` (None: no limit), atomically, and held += quantity too when
    the units are a hold's; the new (used, held), or None."""
    table = connection.ops.quote_name(UsageCounter._meta.db_table)
    condition = "" if limit is None else " AND used + %s <= %s"
    params: list[Any] = [
        quantity,
        quantity if hold else 0,
        _db_time(timezone.now()),
        customer_id,
        feature_id,
        _db_time(period.start),
    ]
    if limit is not None:
        params += [quantity, limit]
    sql = (
        f"UPDATE {table} SET used = used + %s, held = held + %s, updated_at = %s "  # noqa: S608
        f"WHERE customer_id = %s AND feature_id = %s AND period_start = %s{condition} RETURNING used, held"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if row is None:  # refused, or the period's counter does not exist yet
            UsageCounter.objects.bulk_create(
                [
                    UsageCounter(
                        project_id=project_id,
                        customer_id=customer_id,
                        feature_id=feature_id,
                        period_start=period.start,
                        period_end=period.end,
                    )
                ],
                ignore_conflicts=True,
            )
            cursor.execute(sql, params)
            row = cursor.fetchone()
    return (int(row[0]), int(row[1])) if row is not None else None


def _counter_unhold(
    *, customer_id: str, feature_id: str, period_start: datetime, held: int, returned: int, covered: int = 0
) -> None:
    """A hold's units leave its period's counter: `held` of them stop being held, and `returned` of those stop
    counting as used too (what a confirm did not take; all of them on a release or an expiry), `covered` of
    which credits had paid (a credits waterfall's)."""
    table = connection.ops.quote_name(UsageCounter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET used = used - %s, held = held - %s, covered = covered - %s, "  # noqa: S608
            "updated_at = %s WHERE customer_id = %s AND feature_id = %s AND period_start = %s",
            [
                returned,
                held,
                covered,
                _db_time(timezone.now()),
                customer_id,
                feature_id,
                _db_time(period_start),
            ],
        )


_CONSUME_CALL = (
    "SELECT o_outcome, o_used, o_held FROM tollgate_metered_consume(%s, %s, %s, %s, %s, %s::bigint, %s::timestamptz, "
    "%s::timestamptz, %s::timestamptz, %s::boolean, %s::bigint, %s::double precision[])"
)


def _metered_consume_pg(
    row: dict[str, Any], period: resolver.Period, quantity: int, entry: FeatureEntry
) -> tuple[str, int, int]:
    """PostgreSQL: records a metered consume and adds it to its period counter within the limit, in one round
    trip (`tollgate_metered_consume`, migration 0005): no BEGIN or COMMIT of its own outside a transaction.
    Returns (outcome, used, held): `consumed` (used = the new count), `duplicate`, `denied` (used = the count
    that refused it), or `threshold` — it would cross 80 % or 100 % of the limit, so nothing was written and the
    caller records it in a transaction together with `usage.threshold_reached`."""
    limit = counted_cap(entry)
    marks = sorted({units for _, units in usage_marks(entry)})
    usage_partitions_ensure(months=[month_of(row["timestamp"])])
    params = [
        row["id"],
        row["project_id"],
        row["customer_id"],
        row["feature_id"],
        row["event_id"],
        quantity,
        row["timestamp"],
        period.start,
        period.end,
        bool(row["meter_status"]),
        limit,
        marks,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_CONSUME_CALL, params)
        outcome, used, held = cursor.fetchone()
    return str(outcome), int(used or 0), int(held or 0)


def _allocation_move(
    *, project_id: str, customer_id: str, feature_id: str, delta: int, limit: int | None, held: int = 0
) -> tuple[int, int] | None:
    """in_use += delta and held += `held` (a hold's units), never above `limit` nor below the units held,
    atomically; the new (in_use, held), or None if refused."""
    table = connection.ops.quote_name(AllocationCounter._meta.db_table)
    if delta >= 0:
        condition = "" if limit is None else " AND in_use + %s <= %s"
        extra: list[Any] = [] if limit is None else [delta, limit]
    else:
        condition = " AND in_use + %s >= held + %s"
        extra = [delta, held]
    sql = (
        f"UPDATE {table} SET in_use = in_use + %s, held = held + %s, updated_at = %s "  # noqa: S608
        f"WHERE customer_id = %s AND feature_id = %s{condition} RETURNING in_use, held"
    )
    params = [delta, held, _db_time(timezone.now()), customer_id, feature_id, *extra]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if row is None and delta > 0:
            AllocationCounter.objects.bulk_create(
                [AllocationCounter(project_id=project_id, customer_id=customer_id, feature_id=feature_id)],
                ignore_conflicts=True,
            )
            cursor.execute(sql, params)
            row = cursor.fetchone()
    return (int(row[0]), int(row[1])) if row is not None else None


def crossing_insert(
    project_id: str, customer_id: str, feature_id: str, period_start: datetime, label: str
) -> bool:
    """Records a threshold's crossing (`ThresholdCrossing`); False when it was recorded for this period before
    (one statement on both backends)."""
    table = connection.ops.quote_name(ThresholdCrossing._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (project_id, customer_id, feature_id, period_start, threshold, created_at) "  # noqa: S608
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [project_id, customer_id, feature_id, _db_time(period_start), label, _db_time(timezone.now())],
        )
        return bool(cursor.rowcount == 1)
