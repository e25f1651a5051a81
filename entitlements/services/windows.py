"""Usage windows: limits per calendar minute, hour, day or week (UTC) beside a metered feature's period limit.

A window starts on a whole minute, hour, day or week (Monday 00:00 UTC) and ends when the next one starts: the
windows are calendar windows, not rolling ones, so a window's count is one row (`UsageWindowCounter`) and every
limit holds with the same conditional `UPDATE` as the period's (`used + n <= limit`), and an answer can say to
the second when the window frees up. The row moves to the next window in the statement that first counts in it.

- `windows_take`: a consume or a hold takes `quantity` from each of its feature's windows, shortest first, in the
  caller's transaction: all or none (the caller rolls back on None).
- `windows_give_back`: a hold's units not used (released, expired, the rest of a confirm) go back to the windows
  they were taken from, if those windows are still current.
- `windows_add`: recorded usage (`POST /usage`) counts in the window of its timestamp, never refused; an event
  for a window already past counts nowhere (its window is over).
"""

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from catalog.rules import WINDOW_SECONDS
from entitlements.entities import entity_windows
from entitlements.models import EntityWindowCounter, Hold, UsageWindowCounter
from entitlements.services.counters import crossing_insert
from entitlements.snapshot import FeatureEntry
from entitlements.windows import iso_at, window_bounds
from events.services.record import event_record
from projects.models import Project


def window_start(window: str, at: datetime) -> datetime:
    return datetime.fromtimestamp(window_bounds(window, at.timestamp())[0], UTC)


def _db_time(moment: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(moment)


_TABLE = UsageWindowCounter._meta.db_table
_ENTITY_TABLE = EntityWindowCounter._meta.db_table


def _where(entity: str | None) -> tuple[str, str]:
    """(the table, the condition naming one counter row after customer, feature and span) of the account's
    windows (`entity` None) or one entity's own (`per_entity.windows`)."""
    if entity is None:
        return connection.ops.quote_name(_TABLE), "customer_id = %s AND feature_id = %s AND span = %s"
    return (
        connection.ops.quote_name(_ENTITY_TABLE),
        "customer_id = %s AND feature_id = %s AND span = %s AND entity = %s",
    )


def _take_one(
    *,
    project_id: str,
    customer_id: str,
    feature_id: str,
    window: str,
    start: datetime,
    quantity: int,
    limit: int,
    held: int,
    entity: str | None,
) -> tuple[int, int] | None:
    """used += quantity (and held += `held`) in `window` starting at `start` if that stays within `limit`,
    atomically (a row still on an older window starts this one); the new (used, held), or None if refused.
    `entity`: the entity's own window, not the account's."""
    table, where = _where(entity)
    keys = [customer_id, feature_id, window] + ([] if entity is None else [entity])
    begins = _db_time(start)
    sql = (
        f"UPDATE {table} SET "  # noqa: S608
        "used = CASE WHEN window_start >= %s THEN used + %s ELSE %s END, "
        "held = CASE WHEN window_start >= %s THEN held + %s ELSE %s END, "
        "window_start = CASE WHEN window_start >= %s THEN window_start ELSE %s END, updated_at = %s "
        f"WHERE {where} "
        "AND ((window_start >= %s AND used + %s <= %s) OR (window_start < %s AND %s <= %s)) RETURNING used, held"
    )
    params = [
        begins,
        quantity,
        quantity,
        begins,
        held,
        held,
        begins,
        begins,
        _db_time(timezone.now()),
        *keys,
        begins,
        quantity,
        limit,
        begins,
        quantity,
        limit,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        owner = {} if entity is None else {"entity": entity}
        model: Any = UsageWindowCounter if entity is None else EntityWindowCounter
        if (
            row is None
            and not model.objects.filter(
                customer_id=customer_id, feature_id=feature_id, span=window, **owner
            ).exists()
        ):
            fresh = model(
                project_id=project_id,
                customer_id=customer_id,
                feature_id=feature_id,
                span=window,
                window_start=start,
                updated_at=timezone.now(),
                **owner,
            )
            model.objects.bulk_create([fresh], ignore_conflicts=True)
            cursor.execute(sql, params)
            row = cursor.fetchone()
    return (int(row[0]), int(row[1])) if row is not None else None


def windows_take(
    *,
    project_id: str,
    customer_id: str,
    feature_id: str,
    windows: list[list[Any]],
    quantity: int,
    at: datetime,
    hold: bool = False,
    entity: str | None = None,
) -> dict[str, list[Any]] | None:
    """Takes `quantity` from each window ([[name, limit], …], shortest first) at the instant `at`, in the caller's
    transaction; {window: [its start (Unix seconds), used, held]} as the counters now stand, or None when one
    refused (the caller rolls back what the others took). `hold`: the units are a hold's (`held` counts them).
    `entity`: the windows are that entity's own (`per_entity.windows`)."""
    taken: dict[str, list[Any]] = {}
    for name, limit in windows:
        start = window_start(name, at)
        counted = _take_one(
            project_id=project_id,
            customer_id=customer_id,
            feature_id=feature_id,
            window=name,
            start=start,
            quantity=quantity,
            limit=int(limit),
            held=quantity if hold else 0,
            entity=entity,
        )
        if counted is None:
            return None
        taken[name] = [start.timestamp(), *counted]
    return taken


def windows_give_back(
    *,
    customer_id: str,
    feature_id: str,
    starts: dict[str, float],
    held: int,
    returned: int,
    entity: str | None = None,
) -> None:
    """A hold's units leave the windows it took them from (`starts`: {window: start, Unix seconds}):
    `held` stop being held and `returned` of them stop counting as used, in each window still current.
    `entity`: the windows are that entity's own."""
    if not starts:
        return
    table, where = _where(entity)
    keys = [customer_id, feature_id] + ([] if entity is None else [entity])
    now = _db_time(timezone.now())
    with connection.cursor() as cursor:
        for name, start in sorted(starts.items(), key=lambda item: WINDOW_SECONDS[item[0]]):
            cursor.execute(
                f"UPDATE {table} SET used = used - %s, held = held - %s, updated_at = %s "  # noqa: S608
                f"WHERE {where} AND window_start = %s",
                [
                    returned,
                    held,
                    now,
                    *keys[:2],
                    name,
                    *keys[2:],
                    _db_time(datetime.fromtimestamp(start, UTC)),
                ],
            )


def windows_add(
    *, project_id: str, additions: Iterable[tuple[str, str, str, datetime, int]]
) -> dict[tuple[str, str, str], tuple[datetime, int, int]]:
    """Recorded usage: each (customer id, feature id, window, instant, quantity) counts in the window holding the
    instant if it is the row's window or a later one; never refused. In key order (two batches never wait on each
    other crosswise). Returns, per (customer id, feature id, window) counted in its current window, (the window's
    start, units added, used now)."""
    counted = _add(
        project_id,
        [((customer_id, feature_id), name, at, n) for customer_id, feature_id, name, at, n in additions],
        entity=False,
    )
    return {(owner[0], owner[1], name): found for (owner, name), found in counted.items()}


def entity_windows_add(
    *, project_id: str, additions: Iterable[tuple[str, str, str, str, datetime, int]]
) -> dict[tuple[str, str, str, str], tuple[datetime, int, int]]:
    """`windows_add` for entities' own windows: each (customer id, feature id, entity, window, instant,
    quantity); per (customer id, feature id, entity, window) counted in its current window, (its start, units
    added, used now)."""
    counted = _add(
        project_id,
        [
            ((customer_id, feature_id, entity), name, at, n)
            for customer_id, feature_id, entity, name, at, n in additions
        ],
        entity=True,
    )
    return {(owner[0], owner[1], owner[2], name): found for (owner, name), found in counted.items()}


def _add(
    project_id: str, additions: list[tuple[tuple[str, ...], str, datetime, int]], *, entity: bool
) -> dict[tuple[tuple[str, ...], str], tuple[datetime, int, int]]:
    """`windows_add` of (owner, window, instant, quantity) additions, the owner (customer id, feature id) in the
    account's table or, `entity`, (customer id, feature id, entity) in the entities'."""
    totals: dict[tuple[tuple[str, ...], str, datetime], int] = {}
    for owner, name, at, quantity in additions:
        key = (owner, name, window_start(name, at))
        totals[key] = totals.get(key, 0) + quantity
    # One row per owner and window size: of a batch's windows of one size, only the latest counts (the others
    # are over; one statement may not move a row twice).
    latest: dict[tuple[tuple[str, ...], str], datetime] = {}
    for owner, name, start in totals:
        found = latest.get((owner, name))
        latest[(owner, name)] = start if found is None else max(found, start)
    totals = {key: units for key, units in totals.items() if latest[key[:2]] == key[2]}
    if not totals:
        return {}
    table = connection.ops.quote_name(_ENTITY_TABLE if entity else _TABLE)
    owner_columns = "customer_id, feature_id, entity" if entity else "customer_id, feature_id"
    now = _db_time(timezone.now())
    ordered = sorted(totals.items(), key=lambda item: item[0])
    width = 7 if entity else 6
    values = ", ".join(["(" + ", ".join(["%s"] * width) + ", 0, %s)"] * len(ordered))
    params: list[Any] = []
    for (owner, name, start), quantity in ordered:
        params += [project_id, *owner, name, _db_time(start), quantity, now]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS t (project_id, {owner_columns}, span, window_start, used, held, "  # noqa: S608
            f"updated_at) VALUES {values} ON CONFLICT ({owner_columns}, span) DO UPDATE SET "
            "used = CASE WHEN t.window_start = excluded.window_start THEN t.used + excluded.used "
            "WHEN t.window_start < excluded.window_start THEN excluded.used ELSE t.used END, "
            "held = CASE WHEN t.window_start < excluded.window_start THEN 0 ELSE t.held END, "
            "window_start = CASE WHEN t.window_start < excluded.window_start THEN excluded.window_start "
            f"ELSE t.window_start END, updated_at = excluded.updated_at RETURNING {owner_columns}, span, "
            "window_start, used",
            params,
        )
        rows = cursor.fetchall()
    counted: dict[tuple[tuple[str, ...], str], tuple[datetime, int, int]] = {}
    for row in rows:
        owner, name, start, used = tuple(row[: len(row) - 3]), row[-3], row[-2], row[-1]
        begins = start if isinstance(start, datetime) else datetime.fromisoformat(str(start))
        begins = begins if begins.tzinfo else begins.replace(tzinfo=UTC)
        added = totals.get((owner, name, begins))
        if added is not None:  # counted in the current window (a late event's window is over)
            counted[(owner, name)] = (begins, added, int(used))
    return counted


def windows_reached(
    *,
    project: Project,
    customer_id: str,
    external_id: str,
    feature_key: str,
    entry: FeatureEntry,
    counted: dict[str, tuple[float, int, int]],
    entity: str | None = None,
) -> None:
    """Announces each window a use filled, once per window (`ThresholdCrossing` labelled `window:<name>`), shortest
    first, in the caller's transaction: `counted` is {window: (its start, units this use added, used now)}.
    `entity`: the windows are that entity's own (`per_entity.windows`; labelled `window:<name>:<entity's digest>`,
    the event naming the entity)."""
    windows = entry.get("windows", []) if entity is None else entity_windows(entry)
    for name, limit in windows:
        if name not in counted:
            continue
        start, added, used = counted[name]
        if not used - added < limit <= used:
            continue
        begins = datetime.fromtimestamp(start, UTC)
        label = f"window:{name}"
        if entity is not None:
            label += ":" + hashlib.sha256(entity.encode()).hexdigest()[:24]
        if crossing_insert(project.pk, customer_id, entry["id"], begins, label):
            announced = {
                "customer": external_id,
                "feature": feature_key,
                "window": name,
                "limit": limit,
                "used": used,
                "window_start": iso_at(start),
                "resets_at": iso_at(window_bounds(name, start)[1]),
            }
            if entity is not None:
                announced["entity"] = entity
            event_record(project=project, type="usage.window_reached", data_object=announced)


def windows_hold(
    project: Project, hold: Hold, external_id: str, feature_key: str, entry: FeatureEntry
) -> bool:
    """A new hold (`services.holds`) takes its units from the feature's windows at its creation, and keeps which
    windows they came from (`Hold.windows`) to give back what it does not use; False when a window refuses (the
    caller rolls back)."""
    in_windows = windows_take(
        project_id=project.pk,
        customer_id=hold.customer_id,
        feature_id=hold.feature_id,
        windows=entry["windows"],
        quantity=hold.quantity,
        at=hold.created_at,
        hold=True,
    )
    if in_windows is None:
        return False
    hold.windows = {name: counted[0] for name, counted in in_windows.items()}
    Hold.objects.filter(pk=hold.pk).update(windows=hold.windows)
    windows_reached(
        project=project,
        customer_id=hold.customer_id,
        external_id=external_id,
        feature_key=feature_key,
        entry=entry,
        counted={name: (c[0], hold.quantity, c[1]) for name, c in in_windows.items()},
    )
    return True


def entity_windows_take(
    *,
    project: Project,
    customer_id: str,
    external_id: str,
    feature_key: str,
    entry: FeatureEntry,
    entity: str,
    quantity: int,
    at: datetime,
    hold: bool = False,
) -> dict[str, list[Any]] | None:
    """A use (or a hold) naming an entity takes `quantity` from the entity's own windows too, after the entity's
    period counter (the lock order every path keeps), and announces each window it fills; as `windows_take` ({}
    for an entity without windows of its own, None when one refused: the caller rolls back)."""
    windows = entity_windows(entry)
    if not windows:
        return {}
    taken = windows_take(
        project_id=project.pk,
        customer_id=customer_id,
        feature_id=entry["id"],
        windows=windows,
        quantity=quantity,
        at=at,
        hold=hold,
        entity=entity,
    )
    if taken is not None:
        windows_reached(
            project=project,
            customer_id=customer_id,
            external_id=external_id,
            feature_key=feature_key,
            entry=entry,
            counted={name: (c[0], quantity, c[1]) for name, c in taken.items()},
            entity=entity,
        )
    return taken
