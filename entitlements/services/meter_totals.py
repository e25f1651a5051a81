"""Period totals of usage by Stripe-meter status (`UsageMeterTotal`, what `GET /usage` reads), in the units a meter
bills — each event's quantity less the units credits paid (`covered`, a credits waterfall's): added to as usage
events are recorded (`meter_totals_add`, called by `counters._events_insert` in its transaction), moved between
statuses with the events (`meter_status_move`: billing's reporter marks events reported, skipped or failed through
it), and recomputed from the events (`meter_totals_rebuild`, `manage.py usage_meter_totals`) to find and repair
drift. Every change is one relative statement (`quantity = quantity + n`), so concurrent changes never lose one.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Sum

from entitlements.models import UsageEvent, UsageMeterTotal

# (customer id, feature id, period start, meter status) → quantity
TotalKey = tuple[str, str, datetime, str]


def _db_time(moment: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(moment)


def meter_totals_add(*, project_id: str, changes: dict[TotalKey, int]) -> None:
    """Adds each change (negative: takes away) to its total, in one upsert, in the caller's transaction. Rows are
    written in key order, so two transactions changing the same totals never wait on each other crosswise."""
    changes = {key: amount for key, amount in changes.items() if amount and key[3]}
    if not changes:
        return
    table = connection.ops.quote_name(UsageMeterTotal._meta.db_table)
    params: list[Any] = []
    for (customer_id, feature_id, start, status), amount in sorted(
        changes.items(), key=lambda item: (item[0][0], item[0][1], item[0][2], item[0][3])
    ):
        params += [project_id, customer_id, feature_id, _db_time(start), status, amount]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(changes))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS t (project_id, customer_id, feature_id, period_start, meter_status, quantity) "  # noqa: S608
            f"VALUES {values} ON CONFLICT (customer_id, feature_id, period_start, meter_status) "
            "DO UPDATE SET quantity = t.quantity + excluded.quantity",
            params,
        )


def meter_totals_of_rows(rows: Iterable[dict[str, Any]]) -> dict[TotalKey, int]:
    """The totals new event rows (`counters._events_insert`'s) add to: those a meter bills, in a period."""
    changes: dict[TotalKey, int] = {}
    for row in rows:
        if row["meter_status"] and row["period_start"] is not None:
            key = (row["customer_id"], row["feature_id"], row["period_start"], str(row["meter_status"]))
            changes[key] = changes.get(key, 0) + row["quantity"] - int(row.get("covered") or 0)
    return changes


def meter_totals_covered(row: dict[str, Any], units: int) -> None:
    """An event row just inserted (`counters._events_insert`'s, counted in its total at its full quantity) had
    `units` of it paid from credits: its total leaves them out (no meter bills them)."""
    if units and row["meter_status"] and row["period_start"] is not None:
        key = (row["customer_id"], row["feature_id"], row["period_start"], str(row["meter_status"]))
        meter_totals_add(project_id=row["project_id"], changes={key: -units})


def meter_status_move(
    *, event_ids: Iterable[str], status: str, only_from: str | None = None, **changes: Any
) -> int:
    """Sets the meter status of these usage events (by primary key) to `status`, with the other `changes` to their
    columns, and moves their quantities between the period totals, in one transaction (the caller's, if any). The
    events are locked first (in key order), so the status each leaves is the one it has. `only_from`: change only
    the events in that status. Returns how many events it changed."""
    ids = sorted(set(event_ids))
    if not ids:
        return 0
    with transaction.atomic():
        locked = UsageEvent.objects.filter(pk__in=ids)
        if only_from is not None:
            locked = locked.filter(meter_status=only_from)
        rows = list(
            locked.select_for_update()
            .order_by("pk")
            .values_list(
                "pk",
                "project_id",
                "customer_id",
                "feature_id",
                "period_start",
                "meter_status",
                "quantity",
                "covered",
            )
        )
        if not rows:
            return 0
        UsageEvent.objects.filter(pk__in=[row[0] for row in rows]).update(meter_status=status, **changes)
        by_project: dict[str, dict[TotalKey, int]] = {}
        for _, project_id, customer_id, feature_id, start, before, counted, covered in rows:
            if before == status or start is None:
                continue
            quantity = counted - covered  # the units a meter bills
            moves = by_project.setdefault(project_id, {})
            if before:
                moves[(customer_id, feature_id, start, before)] = (
                    moves.get((customer_id, feature_id, start, before), 0) - quantity
                )
            if status:
                moves[(customer_id, feature_id, start, status)] = (
                    moves.get((customer_id, feature_id, start, status), 0) + quantity
                )
        for project_id, moves in sorted(by_project.items()):
            meter_totals_add(project_id=project_id, changes=moves)
    return len(rows)


def meter_due_now(*, event_ids: Iterable[str], now: datetime, only_from: str | None = None) -> int:
    """These usage events are due to be reported to Stripe's meter now: pending, next attempted at `now`, no error
    (`meter_status_move`; `only_from`: only those in that status). Returns how many changed; queueing their report
    is the caller's."""
    return meter_status_move(
        event_ids=event_ids,
        status=UsageEvent.MeterStatus.PENDING,
        only_from=only_from,
        meter_next_attempt_at=now,
        meter_error="",
    )


@dataclass(frozen=True)
class TotalDrift:
    """A period total that differs from the sum of its events."""

    project_id: str
    customer_id: str
    feature_id: str
    period_start: datetime
    meter_status: str
    stored: int
    computed: int


def meter_totals_rebuild(
    *, period_start: datetime | None = None, project_id: str | None = None, fix: bool = False
) -> list[TotalDrift]:
    """Recomputes the period totals from the usage events (quantity less the units credits paid; of the periods
    starting at `period_start`, and of one
    project, when given) and returns each total that drifted; `fix` writes the computed values. The totals are
    locked first, so an event recorded meanwhile is either in the sum or adds to the written total after it."""
    totals = UsageMeterTotal.objects.all()
    events = UsageEvent.objects.exclude(meter_status=UsageEvent.MeterStatus.NONE).filter(
        period_start__isnull=False
    )
    if period_start is not None:
        totals, events = totals.filter(period_start=period_start), events.filter(period_start=period_start)
    if project_id is not None:
        totals, events = totals.filter(project_id=project_id), events.filter(project_id=project_id)
    key_fields = ("project_id", "customer_id", "feature_id", "period_start", "meter_status")
    with transaction.atomic():
        stored_rows = (
            (totals.select_for_update() if fix else totals)
            .order_by("pk")
            .values_list(*key_fields, "quantity")
        )
        stored = {row[:5]: int(row[5]) for row in stored_rows}
        computed = {
            row[:5]: int(row[5])
            for row in events.values_list(*key_fields)
            .annotate(total=Sum(F("quantity") - F("covered")))
            .order_by()
        }
        drifts = [
            TotalDrift(
                project_id=key[0],
                customer_id=key[1],
                feature_id=key[2],
                period_start=key[3],
                meter_status=key[4],
                stored=stored.get(key, 0),
                computed=computed.get(key, 0),
            )
            for key in sorted(set(stored) | set(computed))
            if stored.get(key, 0) != computed.get(key, 0)
        ]
        if fix and drifts:
            by_project: dict[str, dict[TotalKey, int]] = {}
            for drift in drifts:
                key = (drift.customer_id, drift.feature_id, drift.period_start, drift.meter_status)
                by_project.setdefault(drift.project_id, {})[key] = drift.computed - drift.stored
            for project, changes in sorted(by_project.items()):
                meter_totals_add(project_id=project, changes=changes)
            UsageMeterTotal.objects.filter(quantity=0).filter(
                **({"period_start": period_start} if period_start is not None else {})
            ).delete()
    return drifts
