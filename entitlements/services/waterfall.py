"""The credits waterfall: a metered feature whose value names a credits feature (`{"credits": {"feature": key,
"cost": n}}`) takes each use from its period's allowance first, then from that feature's credits (n a unit, by
grant priority and expiry, as any spend), then as overage up to the spend cap where overage is allowed, and
refuses the rest. Usage windows bound every unit, whichever step pays for it (`services.windows`).

One transaction decides and records all of it under the period counter's row lock, so concurrent uses of the
feature see each other's steps: the counter's `used` counts every unit, its `covered` the units paid from
credits. What the allowance and the cap are judged against is the rest, `used − covered` (the units a metered
price bills: a consume's event carries `covered`, and a Stripe meter is told only of the others).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from entitlements.entities import waterfall_entity
from entitlements.models import UsageCounter, UsageEvent
from entitlements.services.counters import _db_time, counted_cap
from entitlements.services.meter_totals import meter_totals_covered
from entitlements.snapshot import FeatureEntry, StructureSnapshot
from projects.models import Project


@dataclass(frozen=True)
class Steps:
    """How a use of `quantity` units was paid: `allowance` + `credits` + `overage` units, the credits spent for
    them (`takes`: [(lot id, credits)]), and the counter after it (`used`, `held`, `covered`)."""

    allowance: int
    credits: int
    overage: int
    takes: list[tuple[str, int]]
    used: int
    held: int
    covered: int

    @property
    def own_before(self) -> int:
        """The units the allowance and the cap were judged against before this use (`used − covered`)."""
        return self.used - self.covered - self.allowance - self.overage


def counter_lock(
    project_id: str, customer_id: str, feature_id: str, start: datetime, end: datetime
) -> tuple[int, int, int]:
    """The period counter's (used, held, covered), its row locked until the transaction ends (made first when
    the period has none yet)."""
    table = connection.ops.quote_name(UsageCounter._meta.db_table)
    lock = " FOR UPDATE" if connection.vendor == "postgresql" else ""
    sql = (
        f"SELECT used, held, covered FROM {table} "  # noqa: S608
        f"WHERE customer_id = %s AND feature_id = %s AND period_start = %s{lock}"
    )
    params = [customer_id, feature_id, _db_time(start)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if row is None:
            UsageCounter.objects.bulk_create(
                [
                    UsageCounter(
                        project_id=project_id,
                        customer_id=customer_id,
                        feature_id=feature_id,
                        period_start=start,
                        period_end=end,
                    )
                ],
                ignore_conflicts=True,
            )
            cursor.execute(sql, params)
            row = cursor.fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def credits_entry(structure: StructureSnapshot, entry: FeatureEntry) -> tuple[str, FeatureEntry] | None:
    """The waterfall's credits feature (key, entry) for a metered entry, or None: no waterfall, a credits feature
    no longer in the catalog, or one revoked from the customer (its credits pay for nothing)."""
    waterfall = entry.get("credits")
    if waterfall is None:
        return None
    found = structure["features"].get(waterfall["feature"])
    if found is None or found["revoked"]:
        return None
    return waterfall["feature"], found


def waterfall_take(
    *,
    project: Project,
    customer_id: str,
    external_id: str,
    structure: StructureSnapshot,
    entry: FeatureEntry,
    period_start: datetime,
    period_end: datetime,
    quantity: int,
    reference: str,
    ledger_type: str,
    hold: bool,
    now: datetime,
    recorded: bool = False,
    entity: str | None = None,
) -> Steps | None:
    """Takes `quantity` units of a waterfall feature in its period (inside the caller's transaction): from the
    allowance left, then credits (`ledger_type` entries naming `reference`: a consume, or a hold's), then
    overage within the cap; None when they do not all fit (nothing taken). `hold`: the units are a hold's
    (`held` too). `recorded`: usage that happened (`POST /usage`), never refused: what credits do not pay for
    is counted past the limit whatever the overage and the cap. `entity`: the use names one of the customer's
    entities, whose own credits pay first where the credits feature lets it hold some (`waterfall_entity`)."""
    from entitlements.services.consume import (  # consume imports this module
        _credits_spend,
        credit_lots_locked,
    )

    used, held, covered = counter_lock(project.pk, customer_id, entry["id"], period_start, period_end)
    own = used - covered
    limit = int(entry["limit"] or 0)
    allowance = min(quantity, max(limit - own, 0))
    rest = quantity - allowance
    paid = 0
    takes: list[tuple[str, int]] = []
    found = credits_entry(structure, entry) if rest else None
    if found is not None:
        key, credit_entry = found
        cost = int(entry["credits"]["cost"])
        owner = waterfall_entity(structure, entry, entity)
        lots = credit_lots_locked(customer_id, credit_entry["id"], now, owner)
        paid = min(rest, sum(lot.remaining for lot in lots) // cost)
        if paid:
            spent_entry: FeatureEntry = {
                **credit_entry,
                "credits_low_percent": structure["credits_low_percent"],
            }
            _, takes = _credits_spend(
                project=project,
                customer_id=customer_id,
                external_id=external_id,
                feature_key=key,
                entry=spent_entry,
                quantity=paid * cost,
                reference=reference,
                ledger_type=ledger_type,
                now=now,
                lots=lots,
                entity=owner,
            )
    overage = rest - paid
    if overage and not recorded:
        cap = counted_cap(entry)
        if not entry.get("overage") or (cap is not None and own + allowance + overage > cap):
            return None
    table = connection.ops.quote_name(UsageCounter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET used = used + %s, held = held + %s, covered = covered + %s, "  # noqa: S608
            "updated_at = %s WHERE customer_id = %s AND feature_id = %s AND period_start = %s",
            [
                quantity,
                quantity if hold else 0,
                paid,
                _db_time(now),
                customer_id,
                entry["id"],
                _db_time(period_start),
            ],
        )
    return Steps(
        allowance, paid, overage, takes, used + quantity, held + (quantity if hold else 0), covered + paid
    )


def usage_event_covered(row: dict[str, Any], units: int) -> None:
    """The consume event just inserted (`row`, `consume._event_row`'s) had `units` of it paid from credits: a
    Stripe meter reports the rest (`services.meters`), and its period's meter total counts only that. The row says
    so too (`covered`)."""
    UsageEvent.objects.filter(pk=row["id"], timestamp=row["timestamp"]).update(covered=units)
    meter_totals_covered(row, units)
    row["covered"] = units
