"""Consume and release: `entitlement_consume` checks and records usage atomically (period counters,
allocations, or credit lots spent under row locks); a denied consume rolls back, so it records nothing, and the
same id again is answered with the current state. `entitlement_release` gives back allocation units, audited.
"""

import math
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from catalog.models import Feature
from core.errors import Conflict, InvalidRequest
from core.ids import new_id
from core.wording import with_article
from entitlements import cache as ent_cache
from entitlements import resolver, statements, usage_read
from entitlements.entities import entity_for_use, entity_judged, entity_usage
from entitlements.models import CreditLedgerEntry, CreditLot, Hold, UsageEvent
from entitlements.selectors import feature_answer, snapshot_entry
from entitlements.services.account_caps import account_cap_judge
from entitlements.services.balance_thresholds import balance_fell
from entitlements.services.counters import (
    _allocation_move,
    _counter_take,
    _events_insert,
    _metered_consume_pg,
    counted_cap,
    usage_events_of,
    usage_id_reused,
)
from entitlements.services.credit_lots import lots_refill
from entitlements.services.customers import customers_ensure
from entitlements.services.entities import entity_take
from entitlements.services.meters import meter_report_queue
from entitlements.services.usage import _thresholds
from entitlements.services.waterfall import usage_event_covered, waterfall_take
from entitlements.services.windows import entity_windows_take, windows_reached, windows_take
from entitlements.snapshot import FeatureEntry, StructureSnapshot, UsageCounts, judged_at
from entitlements.waterfall import hold_credits_held
from events.services.record import event_record
from projects.models import Project


class _Denied(Exception):
    """Rolls back a consume that the limit or balance refused."""


def _event_row(
    *,
    project: Project,
    customer_id: str,
    feature: FeatureEntry,
    event_id: str,
    kind: str,
    quantity: int,
    period_start: datetime | None,
) -> dict[str, Any]:
    now = timezone.now()
    meter = kind == UsageEvent.Kind.CONSUME and feature["type"] == Feature.Type.METERED and feature["meter"]
    return {
        "id": new_id("uev"),
        "project_id": project.pk,
        "customer_id": customer_id,
        "feature_id": feature["id"],
        "event_id": event_id,
        "kind": kind,
        "quantity": quantity,
        "timestamp": now,
        "period_start": period_start,
        "properties": {},
        "meter_status": UsageEvent.MeterStatus.PENDING if meter else "",
        "meter_next_attempt_at": now if meter else None,
        "created_at": now,
    }


def _replay(
    project: Project,
    event_id: str,
    customer_id: str,
    feature_id: str,
    quantity: int,
    kind: str,
    entity: str | None = None,
) -> None:
    """The same id again: fine if it named the same thing (the entity included; the first answer stands), else
    409."""
    uses = {event_id: (customer_id, feature_id, quantity, entity)}
    if usage_id_reused(project_id=project.pk, uses=uses, kinds=[kind]) is not None:
        raise Conflict(
            f"id {event_id!r} was already used for another event.", code="idempotency_id_reused", param="id"
        )


def _structure_for_consume(
    project: Project, external_id: str, feature_key: str, read_ahead: dict[str, Any] | None
) -> tuple[StructureSnapshot, str | None, FeatureEntry]:
    """(structure, customer id or None for a user the project has never seen, the feature's entry) for a
    consume or release: from the cache when warm."""
    snapshot = ent_cache.snapshot_get(
        project=project, external_id=external_id, with_usage=False, read_ahead=read_ahead
    )
    entry = snapshot_entry(snapshot, feature_key)
    entry["credits_low_percent"] = snapshot.structure["credits_low_percent"]
    return snapshot.structure, snapshot.structure["customer_id"], entry


def entitlement_consume(
    *,
    project: Project,
    event_id: str,
    external_id: str,
    feature_key: str,
    quantity: int,
    read_ahead: dict[str, Any] | None = None,
    entity: str | None = None,
) -> dict[str, Any]:
    """Checks and records usage atomically. Denied → nothing recorded, `allowed: false`. The same id again is
    answered with the current state and `duplicate: true`, and records nothing more. `read_ahead`: the
    customer's cached structure as the request already fetched it (`cache.snapshot_get`). `entity`: one of the
    customer's entities, whose own limit a period (`per_entity`) the use must fit as well as the account's."""
    structure, customer_id, entry = _structure_for_consume(project, external_id, feature_key, read_ahead)
    if entity is None:
        return _consume(project, event_id, external_id, feature_key, quantity, structure, customer_id, entry)
    try:
        entity_for_use(customer_id=customer_id, feature_key=feature_key, entry=entry, entity_id=entity)
    except InvalidRequest:
        # A retry of a use recorded before the entity was removed (or its plan changed) is that use's duplicate
        # (or 409 naming something else), not a refusal that says nothing was recorded.
        if not usage_events_of(project_id=project.pk, event_ids=[event_id]).exists():
            raise
    answer = _consume(
        project, event_id, external_id, feature_key, quantity, structure, customer_id, entry, entity
    )
    return entity_judged(
        answer,
        entry,
        str(customer_id),
        entity,
        0 if answer["allowed"] else quantity,
        now=structure.get("clock_time"),
    )


def _consume(
    project: Project,
    event_id: str,
    external_id: str,
    feature_key: str,
    quantity: int,
    structure: StructureSnapshot,
    customer_id: str | None,
    entry: FeatureEntry,
    entity: str | None = None,
) -> dict[str, Any]:
    """`entitlement_consume` once the structure is read (and the entity named, if any, checked)."""
    kind = entry["type"]
    if kind not in (Feature.Type.METERED, Feature.Type.CREDITS, Feature.Type.ALLOCATION):
        raise InvalidRequest(
            f"feature: {feature_key!r} is {with_article(kind)} feature; only metered, credits and allocation features are "
            "consumed.",
            code="feature_not_consumable",
            param="feature",
        )
    period = resolver.period_from_snapshot(entry) if kind == Feature.Type.METERED else None
    usage: UsageCounts = {"used": {}, "in_use": {}, "balance": {}, "held": {}}
    refused = (not entry["enabled"] and kind != Feature.Type.CREDITS) or entry["revoked"]
    if customer_id is None:
        if (
            refused or kind == Feature.Type.CREDITS
        ):  # an unknown user has no credits: refused, nothing written
            return _answer(
                feature_key, entry, usage, quantity, allowed=False, now=structure.get("clock_time")
            )
        customer_id = customers_ensure(project=project, external_ids=[external_id])[external_id]
    row = _event_row(
        project=project,
        customer_id=customer_id,
        feature=entry,
        event_id=event_id,
        kind=UsageEvent.Kind.CONSUME,
        quantity=quantity,
        period_start=period.start if period else None,
    )
    if entity is not None:
        row["properties"] = {"entity": entity}
    windows = entry.get("windows") if period is not None else None
    waterfall = period is not None and "credits" in entry
    account = "account_cap" in entry  # judged under its lock (`services.account_caps`)
    if (
        period is not None
        and not (refused or windows or waterfall or account or entity)
        and connection.vendor == "postgresql"
    ):
        # The hot path: one statement, no transaction of our own (see `_metered_consume_pg`).
        outcome, used, held = _metered_consume_pg(row, period, quantity, entry)
        usage["used"][feature_key] = used
        usage["held"][feature_key] = held
        if outcome == "consumed":
            _usage_recorded(project, external_id, entry, metered=True)
            return _answer(feature_key, entry, usage, 0, allowed=True, now=structure.get("clock_time"))
        if outcome == "denied":  # the statement saw the counter that refused it: no second query
            return _answer(
                feature_key, entry, usage, quantity, allowed=False, now=structure.get("clock_time")
            )
        if outcome == "duplicate":
            return _duplicate_answer(
                project, event_id, structure, customer_id, feature_key, entry, quantity, entity
            )
        # "threshold": this use crosses 80 % or 100 % of the limit; recorded below, with its event.
    try:
        with transaction.atomic():
            if not _events_insert([row]):
                raise _Duplicate
            if refused:
                raise _Denied
            if period is not None:
                judged_entry, judged = account_cap_judge(
                    customer_id=customer_id, structure=structure, key=feature_key, entry=entry
                )
                counted_before, counted_after, used, usage["held"][feature_key] = _metered_take(
                    project, structure, customer_id, external_id, judged_entry, period, quantity, row, entity
                )
                if windows:
                    in_windows = windows_take(
                        project_id=project.pk,
                        customer_id=customer_id,
                        feature_id=entry["id"],
                        windows=windows,
                        quantity=quantity,
                        at=judged_at(structure, timezone.now()),
                    )
                    if in_windows is None:
                        raise _Denied
                    usage["windows"] = {feature_key: in_windows}
                    windows_reached(
                        project=project,
                        customer_id=customer_id,
                        external_id=external_id,
                        feature_key=feature_key,
                        entry=entry,
                        counted={name: (c[0], quantity, c[1]) for name, c in in_windows.items()},
                    )
                if entity is not None and (
                    entity_take(
                        project_id=project.pk,
                        customer_id=customer_id,
                        feature_id=entry["id"],
                        entity_id=entity,
                        period_start=period.start,
                        period_end=period.end,
                        quantity=quantity,
                        limit=int(entry["per_entity"]["limit"]),
                    )
                    is None
                    or entity_windows_take(
                        project=project,
                        customer_id=customer_id,
                        external_id=external_id,
                        feature_key=feature_key,
                        entry=entry,
                        entity=entity,
                        quantity=quantity,
                        at=judged_at(structure, timezone.now()),
                    )
                    is None
                ):
                    raise _Denied
                _thresholds(
                    project,
                    customer_id,
                    external_id,
                    feature_key,
                    entry,
                    counted_before,
                    counted_after,
                    judged=judged,
                )
                usage["used"][feature_key] = used
            elif kind == Feature.Type.ALLOCATION:
                moved = _allocation_move(
                    project_id=project.pk,
                    customer_id=customer_id,
                    feature_id=entry["id"],
                    delta=quantity,
                    limit=counted_cap(entry),
                )
                if moved is None:
                    raise _Denied
                usage["in_use"][feature_key], usage["held"][feature_key] = moved
            else:
                usage["balance"][feature_key], _ = _credits_spend(
                    project=project,
                    customer_id=customer_id,
                    external_id=external_id,
                    feature_key=feature_key,
                    entry=entry,
                    quantity=quantity,
                    reference=event_id,
                    now=judged_at(structure, timezone.now()),
                    entity=entity,
                )
                usage["held"][feature_key] = credits_held(customer_id, entry["id"])
            _usage_recorded(project, external_id, entry, metered=period is not None)
    except _Denied:
        return _answer_now(structure, customer_id, feature_key, quantity, allowed=False, entity=entity)
    except _Duplicate:
        return _duplicate_answer(
            project, event_id, structure, customer_id, feature_key, entry, quantity, entity
        )
    if waterfall or account:  # its answer needs the credits' balance, the other features' use: read them
        return _answer_now(structure, customer_id, feature_key, 0, allowed=True, entity=entity)
    return _answer(feature_key, entry, usage, 0, allowed=True, now=structure.get("clock_time"))


def _metered_take(
    project: Project,
    structure: StructureSnapshot,
    customer_id: str,
    external_id: str,
    entry: FeatureEntry,
    period: resolver.Period,
    quantity: int,
    row: dict[str, Any],
    entity: str | None = None,
) -> tuple[int, int, int, int]:
    """A metered consume's units into its period's counter under the limit (a credits waterfall's through its
    steps, `services.waterfall`: the event then carries the units credits paid); raises _Denied. (The units the
    limit judged before and after it — `used − covered` —, the counter's used and held after it.)"""
    if "credits" not in entry:
        taken = _counter_take(
            project_id=project.pk,
            customer_id=customer_id,
            feature_id=entry["id"],
            period=period,
            quantity=quantity,
            limit=counted_cap(entry),
        )
        if taken is None:
            raise _Denied
        return taken[0] - quantity, taken[0], taken[0], taken[1]
    steps = waterfall_take(
        project=project,
        customer_id=customer_id,
        external_id=external_id,
        structure=structure,
        entry=entry,
        period_start=period.start,
        period_end=period.end,
        quantity=quantity,
        reference=row["event_id"],
        ledger_type=CreditLedgerEntry.Type.CONSUME,
        hold=False,
        now=judged_at(structure, timezone.now()),
        entity=entity,
    )
    if steps is None:
        raise _Denied
    if steps.credits:
        usage_event_covered(row, steps.credits)
    own = steps.used - steps.covered
    return steps.own_before, own, steps.used, steps.held


def _usage_recorded(project: Project, external_id: str, entry: FeatureEntry, *, metered: bool) -> None:
    """After a consume: the customer's cached usage is stale on commit, and metered usage is reported to Stripe."""
    ent_cache.usage_changed(project_id=project.pk, external_ids=[external_id])
    if metered and entry["meter"]:
        transaction.on_commit(lambda: meter_report_queue(project_id=project.pk))


def _duplicate_answer(
    project: Project,
    event_id: str,
    structure: StructureSnapshot,
    customer_id: str,
    feature_key: str,
    entry: FeatureEntry,
    quantity: int,
    entity: str | None = None,
) -> dict[str, Any]:
    """A consume id seen before: 409 if it named something else, else the current state, recording nothing."""
    _replay(project, event_id, customer_id, entry["id"], quantity, UsageEvent.Kind.CONSUME, entity)
    return _answer_now(structure, customer_id, feature_key, 0, allowed=True, duplicate=True, entity=entity)


class _Duplicate(Exception):
    """The event id was recorded before (a retry): roll back and answer with the current state."""


def _public(answer: dict[str, Any]) -> dict[str, Any]:
    answer = dict(answer)
    answer.pop("sources", None)
    answer.pop("resets_at", None)
    return answer


def _answer(
    feature_key: str,
    entry: FeatureEntry,
    usage: UsageCounts,
    quantity: int,
    *,
    allowed: bool,
    now: float | None = None,
) -> dict[str, Any]:
    """A consume or release answer from usage the statement returned (no further query); its windows judged at
    `now` (a test clock's customer's: the clock's time, where their use is counted; default the present)."""
    answer = _public(feature_answer(feature_key, entry, usage, quantity, now))
    answer["allowed"] = allowed
    return answer


def _answer_now(
    structure: StructureSnapshot,
    customer_id: str,
    feature_key: str,
    quantity: int,
    *,
    allowed: bool,
    duplicate: bool = False,
    entity: str | None = None,
) -> dict[str, Any]:
    """The answer with usage read from the database now (after a denial or a replay); naming `entity`, its
    own credits paying its credits waterfall with the account's (`entities.entity_usage`)."""
    usage = usage_read.resolve_usage(customer_id=customer_id, structure=structure, now=timezone.now())
    entry = structure["features"][feature_key]
    usage = entity_usage(usage, structure, entry, entity, structure.get("clock_time"))
    answer = _answer(feature_key, entry, usage, quantity, allowed=allowed, now=structure.get("clock_time"))
    if duplicate:
        answer["duplicate"] = True
    return answer


def _credits_spend(
    *,
    project: Project,
    customer_id: str,
    external_id: str,
    feature_key: str,
    entry: FeatureEntry,
    quantity: int,
    reference: str,
    ledger_type: str = CreditLedgerEntry.Type.CONSUME,
    now: datetime | None = None,
    lots: list[CreditLot] | None = None,
    entity: str | None = None,
) -> tuple[int, list[tuple[str, int]]]:
    """Spends credits from the customer's valid lots, by priority (lowest first) then oldest-expiring first,
    under row locks, with ledger entries of `ledger_type`; (the balance left, [(lot id, units taken)]). Raises
    _Denied when the balance is short. `now`: the time the lots' expiry is judged at (`snapshot.judged_at`);
    `lots`: the caller's `credit_lots_locked` already (a credits waterfall sizes its spend by them); `entity`:
    the use names one of the customer's entities, whose own lots go first (`credit_lots_locked`). The low
    balance, the thresholds and the auto-recharge watch the account's balance: what the entity's own lots
    paid leaves it as it was."""
    now = now or timezone.now()
    lots = credit_lots_locked(customer_id, entry["id"], now, entity) if lots is None else lots
    before = sum(lot.remaining for lot in lots)
    if before < max(quantity, 1):
        raise _Denied
    left = quantity
    entries = []
    takes: list[tuple[str, int]] = []
    own_paid = 0
    for lot in lots:
        if left <= 0:
            break
        take = min(lot.remaining, left)
        left -= take
        takes.append((lot.pk, take))
        if lot.owner:
            own_paid += take
        CreditLot.objects.filter(pk=lot.pk).update(remaining=F("remaining") - take)
        entries.append(
            CreditLedgerEntry(
                project_id=project.pk,
                customer_id=customer_id,
                feature_id=entry["id"],
                lot=lot,
                type=ledger_type,
                amount=-take,
                reference=reference,
            )
        )
    CreditLedgerEntry.objects.bulk_create(entries)
    left_over = before - quantity
    account = [lot for lot in lots if not lot.owner]
    before = sum(lot.remaining for lot in account)
    after = before - (quantity - own_paid)
    if before == after:  # the entity's own lots paid for all of it
        return left_over, takes
    total = sum(lot.amount for lot in account)
    mark = math.floor(total * entry_low_percent(entry) / 100)
    if before > mark >= after or (after == 0 < before):
        event_record(
            project=project,
            type="credits.low",
            data_object={
                "customer": external_id,
                "feature": feature_key,
                "balance": after,
                "low_balance_mark": mark,
                "empty": after == 0,
            },
        )
    balance_fell(
        project=project,
        customer_id=customer_id,
        external_id=external_id,
        feature_key=feature_key,
        entry=entry,
        before=before,
        after=after,
        granted=total,
    )
    return left_over, takes


def credit_lots_locked(
    customer_id: str, feature_id: str, now: datetime, entity: str | None = None
) -> list[CreditLot]:
    """The customer's lots of a credits feature that can be spent at `now`, in spending order (priority, then the
    lot expiring first), locked until the transaction ends: the account's; naming an `entity`, that entity's own
    first (in the same order), then the account's. Another entity's lots are never among them."""
    order: list[Any] = ["priority", F("expires_at").asc(nulls_last=True), "created_at", "pk"]
    owned = CreditLot.owned_by("")
    if entity:  # its own first
        owned |= CreditLot.owned_by(entity)
        order.insert(0, Case(When(CreditLot.owned_by(""), then=Value(1)), default=Value(0)))
    return list(
        CreditLot.objects.select_for_update()
        .filter(customer_id=customer_id, feature_id=feature_id, voided_at__isnull=True, remaining__gt=0)
        .filter(owned)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by(*order)
    )


def credits_held(customer_id: str, feature_id: str) -> int:
    """The credits a customer's active holds set aside (already out of the balance): the credits feature's own
    holds', and what credits waterfalls' holds hold of them."""
    rows = statements.HELD.rows(customer_id=customer_id, feature_ids=[feature_id])
    return sum(
        hold_credits_held(quantity, used, units, cost or 0) if paid_with is not None else quantity - used
        for _, paid_with, quantity, used, units, cost in rows
    )


def credits_refill(hold: Hold, returned: int) -> None:
    """Credits a hold does not keep go back to the lots they came from (`lots_refill`), with ledger entries
    `hold_return` (of the lots' feature: a waterfall's hold holds another feature's credits)."""
    lots_refill(
        project_id=hold.project_id,
        customer_id=hold.customer_id,
        taken=[(lot_id, units) for lot_id, units in hold.lots],
        credits=returned,
        type=CreditLedgerEntry.Type.HOLD_RETURN,
        reference=hold.hold_id,
    )


def entry_low_percent(entry: FeatureEntry) -> int:
    return int(entry.get("credits_low_percent", 20))
