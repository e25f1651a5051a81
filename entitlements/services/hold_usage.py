"""Usage reported against an active hold as it goes (a lease: units used in the tenant's process, reported in
batches): `hold_usage` records each event once, idempotent by its id, and the units stop being held and become
used, in one transaction under the hold's row lock (which orders it with the hold's ending, `services.holds`)."""

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F

from core.errors import Conflict, InvalidRequest
from entitlements import cache as ent_cache
from entitlements.models import Hold, UsageEvent
from entitlements.services.counters import usage_events_of, usage_id_reused
from entitlements.services.hold_ending import _events_record, _stamp, _unhold_used
from entitlements.services.hold_pricing import Priced, confirm_at, dimensions_price, same_call
from entitlements.services.holds import _answer, _ended, _hold_get
from entitlements.services.usage_pricing import UsagePricer
from projects.models import Project


@dataclass(frozen=True)
class HoldUsageOutcome:
    """A usage report against a hold: how many events were recorded (`accepted`) or were known already
    (`duplicates`), the hold after it and its feature's answer."""

    accepted: int
    duplicates: int
    hold: Hold
    entitlement: dict[str, Any]


class _Exceeded(Exception):
    """Rolls back a usage report that would use more than the hold has left."""


def hold_usage(
    *,
    project: Project,
    hold_id: str,
    events: list[tuple[str, int]],
    calls: dict[str, tuple[str | None, dict[str, int]]] | None = None,
) -> HoldUsageOutcome:
    """Records usage against an active hold (a lease): each event `(id, quantity)` once, idempotent by its id
    within the project like a consume; the new events' units stop being held and become used, in one
    transaction. All or nothing: more than the hold has left → 400 `usage_exceeds_hold`, an id already used for
    another customer, feature or quantity → 409 `idempotency_id_reused`, nothing recorded. An ended hold → 409
    (`hold_expired` …). Model calls (`calls`: model and dimensions by event id) are made units by the feature's
    formula when reported (`_calls_price`), their events stored with their dimensions and cost."""
    ids = [event_id for event_id, _ in events]
    if len(set(ids)) != len(ids):
        raise InvalidRequest("events: each id once per report.", code="invalid_parameter", param="events")
    hold = _hold_get(project, hold_id)
    if hold.status != Hold.Status.ACTIVE:
        raise _ended(hold)
    priced = _calls_price(hold, calls, ids) if calls else {}
    events = [
        (event_id, priced[event_id].units if event_id in priced else units) for event_id, units in events
    ]
    try:
        with transaction.atomic():
            consumed = (
                Hold.objects.select_for_update()
                .filter(pk=hold.pk, status=Hold.Status.ACTIVE)
                .values_list("consumed", flat=True)
                .first()
            )
            if consumed is None:  # ended meanwhile
                hold.refresh_from_db(fields=["status", "confirmed", "consumed", "ended_at"])
                raise _ended(hold)
            inserted = _events_record(hold, events, consumed=consumed, priced=priced)
            _repeats_check(hold, [event for event in events if event[0] not in inserted])
            units = sum(quantity for event_id, quantity in events if event_id in inserted)
            if consumed + units > hold.quantity:
                raise _Exceeded(consumed)
            if units:
                Hold.objects.filter(pk=hold.pk).update(consumed=F("consumed") + units)
                _unhold_used(hold, units)
                ent_cache.usage_changed(project_id=project.pk, external_ids=[hold.customer.external_id])
    except _Exceeded as exceeded:
        raise InvalidRequest(
            f"events: the hold has {hold.quantity - exceeded.args[0]} units left; these events use more.",
            code="usage_exceeds_hold",
            param="events",
        ) from None
    hold.refresh_from_db(fields=["status", "confirmed", "consumed", "ended_at"])
    answer = _answer(project, hold.customer.external_id, hold.customer_id, hold.feature.key, 1, hold.entity)
    return HoldUsageOutcome(len(inserted), len(events) - len(inserted), hold, answer)


def _calls_price(
    hold: Hold, calls: dict[str, tuple[str | None, dict[str, int]]], ids: list[str]
) -> dict[str, Priced]:
    """Each model call's units and cost, priced now (at the hold's creation once its period is over). One the
    project recorded already keeps the units it was recorded with when it named the same call (a retry is never
    priced again: a cost table may have changed since); another call under its id → 409."""
    recorded = {
        event.event_id: event
        for event in usage_events_of(project_id=hold.project_id, event_ids=calls).only(
            "event_id", "quantity", "dimensions", "cost_micros"
        )
    }
    at = confirm_at(hold, _stamp(hold)[2])
    pricer = UsagePricer(hold.project, {hold.feature.key: hold.feature})  # the cost tables read once a report
    priced = {}
    for index, event_id in enumerate(ids):
        if event_id not in calls:
            continue
        model, dimensions = calls[event_id]
        event = recorded.get(event_id)
        if event is None:
            priced[event_id] = dimensions_price(
                project=hold.project,
                feature=hold.feature,
                model=model,
                dimensions=dimensions,
                at=at,
                param=f"events[{index}]",
                pricer=pricer,
            )
        elif same_call(event.dimensions, model, dimensions):
            priced[event_id] = Priced(event.quantity, event.dimensions or {}, event.cost_micros)
        else:
            raise Conflict(
                f"events: id {event_id!r} was already used for another event.",
                code="idempotency_id_reused",
                param="events",
            )
    return priced


def _repeats_check(hold: Hold, repeated: list[tuple[str, int]]) -> None:
    """Ids of a report the project had already: each must be this use again (the same customer, feature and
    quantity, naming the hold's entity, not a release), as a consume's must (`consume._replay`); else 409 and the report rolls back."""
    if not repeated:
        return
    entity = hold.entity or None
    uses = {
        event_id: (hold.customer_id, hold.feature_id, quantity, entity) for event_id, quantity in repeated
    }
    kinds = [UsageEvent.Kind.USAGE, UsageEvent.Kind.CONSUME]
    reused = usage_id_reused(project_id=hold.project_id, uses=uses, kinds=kinds)
    if reused is not None:
        raise Conflict(
            f"events: id {reused!r} was already used for another event.",
            code="idempotency_id_reused",
            param="events",
        )
