"""What a usage correction moves besides the event's quantity (`services.usage_corrections`, inside its
transaction): the period counter with the credits a credits waterfall paid for the event's units, and the use of
the entity the event named.

**Credits.** An event's units paid from credits (`covered`) are its last ones, as a hold's are. A correction
down removes those first: their credits go back to the lots they came from, last taken first, with ledger
entries `correction` naming the event; a lot voided since (a refund, a grant removed) gets nothing back, one
expired since gets them back to end with it (its balance is nil either way), as a hold's return does. A
correction up is more use of the event's period, paid as recorded usage is (`waterfall.waterfall_take`): the
allowance left, then credits (entries `correction`), then past the limit, never refused.

**An entity's use.** The entity's period counter and its own rolling windows still running follow the event.

**A hold's report** (of a hold that has ended) follows as any event, but what the hold took answers for it: the
credits its units cost were the hold's (ledger entries `hold` and `hold_return` naming the hold, `credit_cost` a
unit), so a correction down gives back from what the hold and its reports' corrections still hold, and the rolling
windows it counted in are the hold's (`Hold.windows`, `Hold.entity_windows`: taken at the hold's start), not
those of the report's timestamp.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import F, Q

from entitlements.entities import entity_windows
from entitlements.models import (
    CreditLedgerEntry,
    CreditLot,
    EntityCounter,
    Hold,
    UsageCorrection,
    UsageCounter,
    UsageEvent,
)
from entitlements.services.credit_lots import lots_refill
from entitlements.services.meter_totals import meter_due_now, meter_status_move, meter_totals_add
from entitlements.services.meters import METER_EVENT_MAX_AGE
from entitlements.services.usage import BACKFILLED
from entitlements.services.waterfall import credits_entry, waterfall_take
from entitlements.services.windows import window_start, windows_give_back
from entitlements.snapshot import FeatureEntry, StructureSnapshot
from projects.models import Project

Ledger = CreditLedgerEntry.Type


@dataclass(frozen=True)
class Sent:
    """A later event Stripe's meter was sent, whose units the freed allowance pays now: Stripe's meter is to bill
    `covered_before - covered_after` more of it (a meter event of its own, `usage_corrections` records it as an
    `allowance` correction of the event)."""

    event: UsageEvent
    covered_before: int
    covered_after: int
    credits: int


@dataclass(frozen=True)
class Followed:
    """What the corrected event counts: its units paid from credits after (`covered`), the credits that moved
    (+ given back, − taken) of `credits_feature` (its id; None: none moved), and the period's units its limit
    judges (`used − covered`) before and after; the later events whose units the allowance freed pays now
    (`moved`, as `UsageCorrection.moved` keeps them)."""

    covered: int
    credits_returned: int
    credits_feature: str | None
    counted_before: int
    counted_after: int
    moved: tuple[dict[str, Any], ...] = ()
    sent: tuple[Sent, ...] = ()

    def billed(self, quantity: int) -> int:
        """The units of the corrected event a metered price bills."""
        return quantity - self.covered


def counter_follow(
    *,
    project: Project,
    event: UsageEvent,
    structure: StructureSnapshot,
    entry: FeatureEntry | None,
    counter: UsageCounter | None,
    after: int,
    judged: datetime,
    now: datetime,
    hold: Hold | None = None,
    open_period: bool = False,
) -> Followed:
    """The event's period counter (locked by the caller) and the credits its waterfall paid follow the event's
    quantity from `event.quantity` to `after` (`hold`: the ended hold the event reports the use of). In an
    `open_period` (not yet invoiced), allowance a correction down frees pays for the period's later units credits
    paid (`_later_follow`)."""
    before, covered = event.quantity, event.covered
    counted_before = counter.used - counter.covered if counter is not None else 0
    returned, feature_id = 0, None
    moved: tuple[list[dict[str, Any]], str | None, list[Sent]] = ([], None, [])
    if after < before:
        back = min(before - after, covered)
        if back:
            returned, feature_id = _credits_back(event, units=back, hold=hold)
        covered -= back
        _counter_add(counter, now, used=after - before, covered=-back)
        if counter is not None and entry is not None and open_period:
            own = counter.used + after - before - (counter.covered - back)
            others = counter.covered - back - covered
            moved = _later_follow(event, entry, structure, counter, own=own, others=others, now=now)
            feature_id = feature_id or moved[1]
    else:
        found = credits_entry(structure, entry) if entry is not None and counter is not None else None
        if found is None or counter is None or entry is None:
            _counter_add(counter, now, used=after - before, covered=0)
        else:
            steps = waterfall_take(  # updates the counter
                project=project,
                customer_id=event.customer_id,
                external_id=event.customer.external_id,
                structure=structure,
                entry=entry,
                period_start=counter.period_start,
                period_end=counter.period_end,
                quantity=after - before,
                reference=event.event_id,
                ledger_type=Ledger.CORRECTION,
                hold=False,
                now=judged,
                recorded=True,
                entity=(event.properties or {}).get("entity"),
            )
            assert steps is not None  # recorded usage is never refused
            if steps.credits:
                covered += steps.credits
                returned = -sum(credits for _, credits in steps.takes)
                feature_id = found[1]["id"]
    units = sum(move["units"] for move in moved[0])
    counted_delta = (after - covered) - (before - event.covered) + units
    return Followed(
        covered,
        returned,
        feature_id,
        counted_before,
        counted_before + counted_delta,
        tuple(moved[0]),
        tuple(moved[2]),
    )


def _later_follow(
    event: UsageEvent,
    entry: FeatureEntry,
    structure: StructureSnapshot,
    counter: UsageCounter,
    *,
    own: int,
    others: int,
    now: datetime,
) -> tuple[list[dict[str, Any]], str | None, list[Sent]]:
    """The allowance a correction down freed (the limit less `own`, the period's units no credits pay after it)
    pays for the units credits paid of the period's other events (`others` of them), the latest first, as a
    waterfall would have had the corrected event been so from the start: their credits go back to their lots
    (entries `correction` naming each event) and the period counter's `covered` follows. An event Stripe's meter
    has not been sent (still due, or skipped as paid from credits) has its units to bill sent by the reporter (one
    skipped is due again). One Stripe's meter holds (reported, no correction of it still to write, within the 35
    days Stripe takes meter events for) is pending until its units are added there (`Sent`: the caller records
    it). One being sent, one with a correction still to write, a hold's report and one backfilled with no billing
    side effects keep their credits. (The events moved, as `UsageCorrection.moved` keeps them; the credits'
    feature id; those Stripe's meter holds.)"""
    limit = entry.get("limit")
    if limit is None or others <= 0 or own >= int(limit) or credits_entry(structure, entry) is None:
        return [], None, []
    free = int(limit) - own
    writing = UsageCorrection.objects.filter(
        customer_id=event.customer_id, meter=UsageCorrection.Meter.PENDING
    ).values("usage_event_id")
    later = list(
        UsageEvent.objects.select_for_update(of=("self",))
        .filter(
            customer_id=event.customer_id,
            feature_id=event.feature_id,
            period_start=counter.period_start,
            kind__in=(UsageEvent.Kind.USAGE, UsageEvent.Kind.CONSUME),  # recorded or consumed
            covered__gt=0,
        )
        .filter(properties__hold__isnull=True)
        .filter(
            (Q(meter_status=UsageEvent.MeterStatus.SKIPPED) & ~Q(meter_error=BACKFILLED))
            | Q(
                Q(meter_next_attempt_at__isnull=True) | Q(meter_next_attempt_at__lte=now),
                meter_status=UsageEvent.MeterStatus.PENDING,
                meter_attempts=0,
            )
            | Q(meter_status=UsageEvent.MeterStatus.NONE)  # a feature no meter bills
            | (
                Q(meter_status=UsageEvent.MeterStatus.REPORTED, timestamp__gte=now - METER_EVENT_MAX_AGE)
                & ~Q(pk__in=writing)
            )
        )
        .exclude(pk=event.pk)
        .order_by("pk")  # locked in key order, as the reporter locks events
    )
    later.sort(key=lambda other: (other.timestamp, other.created_at, other.pk), reverse=True)
    moves: list[dict[str, Any]] = []
    sent: list[Sent] = []
    feature_id: str | None = None
    for other in later:
        if free <= 0:
            break
        take = min(other.covered, free)
        given, paid_with = _credits_back(other, units=take)
        feature_id = feature_id or paid_with
        if other.meter_status == UsageEvent.MeterStatus.SKIPPED:
            # Due to report now, its units to bill with it (moved between the totals at the covered it had).
            meter_due_now(event_ids=[other.pk], now=now)
        elif other.meter_status == UsageEvent.MeterStatus.REPORTED:
            # Pending until Stripe's meter holds its units to bill (the reporter leaves it to its correction).
            meter_status_move(
                event_ids=[other.pk],
                status=UsageEvent.MeterStatus.PENDING,
                meter_next_attempt_at=None,
                meter_error="",
            )
            sent.append(Sent(other, other.covered, other.covered - take, given))
        UsageEvent.objects.filter(pk=other.pk, timestamp=other.timestamp).update(covered=other.covered - take)
        if other.meter_status and other.period_start is not None:
            key = (other.customer_id, other.feature_id, other.period_start, UsageEvent.MeterStatus.PENDING)
            meter_totals_add(project_id=other.project_id, changes={key: take})
        _counter_add(counter, now, used=0, covered=-take)
        moves.append(
            {
                "usage_event": other.pk,
                "event": other.event_id,
                "created_at": other.created_at.isoformat(),
                "units": take,
                "credits": given,
            }
        )
        free -= take
    return moves, feature_id, sent


def _counter_add(counter: UsageCounter | None, now: datetime, *, used: int, covered: int) -> None:
    if counter is not None:
        UsageCounter.objects.filter(pk=counter.pk).update(
            used=F("used") + used, covered=F("covered") + covered, updated_at=now
        )


def _credits_back(event: UsageEvent, *, units: int, hold: Hold | None = None) -> tuple[int, str | None]:
    """Gives back the credits `units` of the event's covered units cost (of what its ledger entries took, net;
    a hold's report: of what the hold and its reports' corrections still hold, `credit_cost` a unit); (the credits
    given back, their feature's id)."""
    net: dict[str, int] = {}
    entries = CreditLedgerEntry.objects.filter(customer_id=event.customer_id)
    if hold is None:
        entries = entries.filter(reference=event.event_id, type__in=(Ledger.CONSUME, Ledger.CORRECTION))
    else:
        entries = entries.filter(
            Q(reference=hold.hold_id, type__in=(Ledger.HOLD, Ledger.HOLD_RETURN))
            | Q(reference__in=_hold_reports(event, hold), type=Ledger.CORRECTION)
        )
    for lot_id, amount in entries.values_list("lot_id", "amount"):
        net[lot_id] = net.get(lot_id, 0) - amount
    spent = sum(net.values())
    if hold is not None:
        credits = min(spent, units * int(hold.credit_cost or 0))
    else:
        credits = spent if units >= event.covered else spent * units // event.covered
    lots = list(  # locked in spending order (as `consume.credit_lots_locked` locks them), given back reversed
        CreditLot.objects.select_for_update()
        .filter(pk__in=[lot for lot, taken in net.items() if taken > 0])
        .order_by("priority", F("expires_at").asc(nulls_last=True), "created_at", "pk")
    )
    lots.sort(key=lambda lot: 0 if lot.owner else 1)  # an entity's own lots paid first
    returned = lots_refill(
        project_id=event.project_id,
        customer_id=event.customer_id,
        taken=[(lot.pk, net[lot.pk]) for lot in lots],
        credits=credits,
        type=Ledger.CORRECTION,
        reference=event.event_id,
    )
    return returned, lots[0].feature_id if lots else None


def _hold_reports(event: UsageEvent, hold: Hold) -> list[str]:
    """The ids of the usage events reporting the hold's use (its reports, and the confirm's units kept)."""
    return list(
        UsageEvent.objects.filter(
            project_id=event.project_id,
            customer_id=event.customer_id,
            feature_id=event.feature_id,
            period_start=event.period_start,
            properties__hold=hold.hold_id,
        ).values_list("event_id", flat=True)
    )


def entity_follow(
    event: UsageEvent,
    entry: FeatureEntry | None,
    delta: int,
    present: datetime,
    now: datetime,
    hold: Hold | None = None,
) -> None:
    """The entity the event named: its period counter, and its own rolling windows still running that counted
    the event (`present`: the time they are judged at; a hold's report: those the hold took), follow the event's
    corrected quantity (`delta` units more)."""
    entity = (event.properties or {}).get("entity")
    if not entity or event.period_start is None:
        return
    EntityCounter.objects.filter(
        customer_id=event.customer_id,
        feature_id=event.feature_id,
        entity=entity,
        period_start=event.period_start,
    ).update(used=F("used") + delta, updated_at=now)
    if entry is not None:
        held_in = hold.entity_windows if hold is not None else None
        windows_follow(event, entity_windows(entry), delta, present, entity=entity, held_in=held_in)


def windows_follow(
    event: UsageEvent,
    windows: Iterable[Sequence[Any]],
    delta: int,
    present: datetime,
    *,
    entity: str | None = None,
    held_in: dict[str, float] | None = None,
) -> None:
    """The rolling windows still running (`present`: the time they are judged at) that counted the event, the
    customer's or `entity`'s own, follow its corrected quantity (`delta` units more). `held_in`: a hold's report,
    counted in the windows the hold took its units from ({window: start}), whatever its timestamp."""
    at = min(event.timestamp, present)
    starts = (
        {
            name: window_start(name, at).timestamp()
            for name, _ in windows
            if window_start(name, at) == window_start(name, present)
        }
        if held_in is None
        else {
            name: float(start)
            for name, start in held_in.items()
            if float(start) == window_start(name, present).timestamp()
        }
    )
    windows_give_back(
        customer_id=event.customer_id,
        feature_id=event.feature_id,
        starts=starts,
        held=0,
        returned=-delta,
        entity=entity,
    )
