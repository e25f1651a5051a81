"""Ending a hold (`services.holds`): `_end` is the one conditional `UPDATE … WHERE status = 'active'` every ending
(confirm, release, expiry) goes through, in the transaction that gives back the units the hold does not keep and
records the usage it does (one usage event; a model call's carries its dimensions and cost, and what the call used
beyond the hold is recorded as usage of its own: `services.hold_pricing`)."""

from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from catalog.models import Feature
from core.errors import InvalidRequest
from customers.selectors import customer_now
from entitlements import cache as ent_cache
from entitlements.models import Hold, UsageEvent
from entitlements.selectors import snapshot_entry
from entitlements.services.consume import _event_row, _usage_recorded, credits_refill
from entitlements.services.counters import _allocation_move, _counter_unhold, _events_insert
from entitlements.services.entities import entity_give_back
from entitlements.services.hold_pricing import Priced, overrun_record
from entitlements.services.waterfall import usage_event_covered
from entitlements.services.windows import windows_give_back
from entitlements.snapshot import FeatureEntry, judged_at
from entitlements.waterfall import paid_within


def _metered_unhold(hold: Hold, *, held: int, returned: int, covered: int = 0) -> None:
    """A metered hold's units leave its period's counter and the usage windows they were taken from: `held` stop
    being held, and `returned` of them stop counting as used (`covered` of those were paid from credits)."""
    assert hold.period_start is not None
    _counter_unhold(
        customer_id=hold.customer_id,
        feature_id=hold.feature_id,
        period_start=hold.period_start,
        held=held,
        returned=returned,
        covered=covered,
    )
    windows_give_back(
        customer_id=hold.customer_id,
        feature_id=hold.feature_id,
        starts=hold.windows,
        held=held,
        returned=returned,
    )
    entity_give_back(hold, held=held, returned=returned)


def _unhold_used(hold: Hold, units: int) -> None:
    """`units` of the hold were used: they stay counted (or out of the credit lots) and stop being held."""
    if hold.feature.type == Feature.Type.METERED:
        _metered_unhold(hold, held=units, returned=0)
    elif hold.feature.type == Feature.Type.ALLOCATION:
        _allocation_move(
            project_id=hold.project_id,
            customer_id=hold.customer_id,
            feature_id=hold.feature_id,
            delta=0,
            limit=None,
            held=-units,
        )


# --- ending a hold ------------------------------------------------------------------------------------------


def _end(
    hold: Hold,
    status: str,
    *,
    confirmed: int | None = None,
    now: datetime | None = None,
    audit: Callable[[], None] | None = None,
    call: Priced | None = None,
) -> bool:
    """Ends an active hold as `status`, giving back what it does not keep, in one transaction (with `audit`, if
    given); False (and the hold re-read) when it was no longer active. A confirm keeps `confirmed` units in all
    (those reported against the hold already among them); a release or an expiry keeps only those reported. A
    hold found past its expiry is expired instead, and False. `now`: the customer's (`customer_now`). A model
    call's confirm (`call`): its event carries the call's dimensions and cost, and what the call used beyond
    the hold is recorded as usage of its own, now."""
    now = now or customer_now(customer=hold.customer)
    if status != Hold.Status.EXPIRED and hold.status == Hold.Status.ACTIVE and hold.expires_at <= now:
        _end(hold, Hold.Status.EXPIRED, now=now)
        return False
    with transaction.atomic():
        # The row lock orders this ending after a usage report in flight on the same hold (`hold_usage`).
        consumed = (
            Hold.objects.select_for_update()
            .filter(pk=hold.pk, status=Hold.Status.ACTIVE)
            .values_list("consumed", flat=True)
            .first()
        )
        if consumed and call is not None:  # rolls back: a report was committed before this lock
            raise InvalidRequest(
                f"dimensions: {consumed} units were reported against the hold with their own dimensions; "
                "confirm it by `quantity`.",
                code="hold_has_reports",
                param="dimensions",
            )
        if consumed is not None:
            kept = max(confirmed, consumed) if confirmed is not None else consumed
            overrun = call.units - kept if call is not None and call.units > kept else 0
            called = {"dimensions": {**(hold.dimensions or {}), "confirmed": call.stored()}} if call else {}
            Hold.objects.filter(pk=hold.pk).update(
                status=status,
                confirmed=kept if confirmed is not None else None,
                ended_at=now,
                overrun=overrun,
                **called,
            )
            if overrun:  # first: as a usage batch, an account cap's lock before any counter's
                overrun_record(hold, overrun)
            _give_back(hold, kept=kept, consumed=consumed)
            if kept > consumed:
                priced = {hold.pk: call} if call is not None else None
                _events_record(hold, [(hold.pk, kept - consumed)], consumed=consumed, priced=priced)
            if audit is not None:
                audit()
            ent_cache.usage_changed(project_id=hold.project_id, external_ids=[hold.customer.external_id])
    hold.refresh_from_db(fields=["status", "confirmed", "consumed", "ended_at", "overrun", "dimensions"])
    return consumed is not None


def _give_back(hold: Hold, *, kept: int, consumed: int) -> None:
    """The hold's units still held stop being held; all but `kept` stop being used (or go back to their credit
    lots). Units reported against it (`consumed`) left `held` when they were reported."""
    returned = hold.quantity - kept
    still_held = hold.quantity - consumed
    kind = hold.feature.type
    if kind == Feature.Type.METERED:
        # A waterfall's units are used uncovered first: those given back are the credits' first.
        covered_back = hold.covered - paid_within(hold.quantity, hold.covered, 0, kept)
        _metered_unhold(hold, held=still_held, returned=returned, covered=covered_back)
        if covered_back:
            credits_refill(hold, covered_back * int(hold.credit_cost or 0))
    elif kind == Feature.Type.ALLOCATION:
        _allocation_move(
            project_id=hold.project_id,
            customer_id=hold.customer_id,
            feature_id=hold.feature_id,
            delta=-returned,
            limit=None,
            held=-still_held,
        )
    elif returned:
        credits_refill(hold, returned)


def _stamp(hold: Hold) -> tuple[FeatureEntry, datetime, bool]:
    """The hold's feature's snapshot entry, the customer's now, and whether the hold's period is the current one."""
    snapshot = ent_cache.snapshot_get(
        project=hold.project, external_id=hold.customer.external_id, with_usage=False
    )
    entry = snapshot_entry(snapshot, hold.feature.key)
    now = judged_at(snapshot.structure, timezone.now())
    return entry, now, hold.period_start is None or entry.get("period_start") == hold.period_start.timestamp()


def _events_record(
    hold: Hold,
    events: list[tuple[str, int]],
    *,
    consumed: int,
    priced: dict[str, Priced] | None = None,
) -> set[str]:
    """Usage events against the hold (`properties.hold` names it), in the hold's period: timestamped now while
    that period is the current one, else at the hold's creation (Stripe's meter bills by the timestamp). The ids
    inserted; an id the project already has is skipped. A confirm's units kept are one such event (the hold's
    own id). `consumed`: the hold's units used before these (a waterfall's events carry the credits' part).
    `priced`: the events that gave their dimensions, by id (stored with their cost)."""
    entry, now, current = _stamp(hold)
    rows = []
    for event_id, units in events:
        row = _event_row(
            project=hold.project,
            customer_id=hold.customer_id,
            feature=entry,
            event_id=event_id,
            kind=UsageEvent.Kind.CONSUME,
            quantity=units,
            period_start=hold.period_start,
        )
        row["timestamp"] = now if current else hold.created_at
        row["properties"] = {"hold": hold.hold_id, **({"entity": hold.entity} if hold.entity else {})}
        if priced and event_id in priced:
            row["dimensions"], row["cost_micros"] = priced[event_id].record, priced[event_id].cost
        rows.append(row)
    inserted = _events_insert(rows)
    for row in rows if hold.covered else []:
        if row["event_id"] in inserted:
            paid = paid_within(hold.quantity, hold.covered, consumed, consumed + row["quantity"])
            consumed += row["quantity"]
            if paid:
                usage_event_covered(row, paid)
    if inserted:
        _usage_recorded(hold.project, hold.customer.external_id, entry, metered=hold.period_start is not None)
    return inserted
