"""Usage events: `usage_record_batch` and `usage_record` store reported usage all or nothing and
idempotently (a tenant's event id counts once), add it to the metered period counters, and record
`usage.threshold_reached` as a counter passes 80% and 100% of its limit.
"""

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from django.db import transaction
from django.utils import timezone

from catalog.models import Feature
from catalog.pricing import terms_amount
from core.errors import InvalidRequest
from core.ids import new_ids
from core.wording import with_article
from entitlements import cache as ent_cache
from entitlements import resolver
from entitlements.entities import entity_for_use, entity_windows
from entitlements.models import CreditLedgerEntry, UsageEvent
from entitlements.services.account_caps import (
    AccountJudged,
    account_cap_reached,
    account_caps_lock,
    account_caps_reached,
)
from entitlements.services.counters import (
    CAP_LABEL,
    THRESHOLDS,
    _counters_add,
    _events_insert,
    crossing_insert,
    usage_events_of,
    usage_keys_recorded,
    usage_marks,
)
from entitlements.services.customers import customers_ensure
from entitlements.services.entities import entities_add
from entitlements.services.meters import meter_report_queue
from entitlements.services.usage_partitions import month_of, usage_partitions_ensure
from entitlements.services.usage_periods import usage_period_for
from entitlements.services.usage_pricing import UsagePricer
from entitlements.services.waterfall import counter_lock, usage_event_covered, waterfall_take
from entitlements.services.windows import entity_windows_add, window_start, windows_add, windows_reached
from entitlements.snapshot import FeatureEntry, StructureSnapshot, judged_at
from events.services.record import event_record
from projects.models import Project

METERED = Feature.Type.METERED


class UsageInput(NamedTuple):
    """One usage event as the tenant sent it (validated for shape by the API). A named tuple: a batch makes 1,000,
    and a frozen dataclass costs three times as much to make."""

    id: str
    customer: str
    feature: str
    quantity: int
    timestamp: datetime | None = None
    properties: dict[str, Any] | None = None
    entity: str | None = None  # one of the customer's entities (`entitlements.entities`)
    model: str | None = None  # the model a call used, and its dimensions, for a feature with a usage formula:
    dimensions: dict[str, int] | None = (
        None  # `quantity` is then what the formula makes of them (`usage_pricing`)
    )
    # A backfill the tenant states has no billing side effects: it may be stamped in any closed period (counted
    # there, and in `as_of` history), and is never sent to Stripe's meter.
    no_billing: bool = False


# The meter note of an event backfilled with no billing side effects: a correction never bills it either.
BACKFILLED = "Backfilled with no billing side effects: never sent to Stripe's meter."


def usage_record_batch(
    *, project: Project, events: list[UsageInput], single: bool = False
) -> tuple[int, int, set[str]]:
    """Records usage events all or nothing; returns (accepted, duplicates, ids accepted). A duplicate id (within
    the batch, or recorded before) is counted once. Invalid input → 400 naming the event's index (`events[3]`),
    or just the field for a `single` event."""

    def at(index: int, name: str) -> str:
        return name if single else f"events[{index}].{name}"

    now = timezone.now()
    features = {
        f.key: f for f in Feature.objects.filter(project=project, key__in={e.feature for e in events})
    }
    refused = {
        key for key in {e.feature for e in events} if getattr(features.get(key), "type", None) != METERED
    }
    if refused:  # the first event naming a missing or unmetered feature
        index, event = next((i, e) for i, e in enumerate(events) if e.feature in refused)
        feature = features.get(event.feature)
        if feature is None:
            raise InvalidRequest(
                f"{at(index, 'feature')}: no such feature {event.feature!r}.",
                code="unknown_feature",
                param=at(index, "feature"),
            )
        raise InvalidRequest(
            f"{at(index, 'feature')}: {event.feature!r} is {with_article(feature.type)} feature; usage events "
            "count metered features (use /entitlements/consume for credits and allocations).",
            code="feature_not_metered",
            param=at(index, "feature"),
        )
    structures = {  # one cache read for every customer of the batch
        external_id: snapshot.structure
        for external_id, snapshot in ent_cache.snapshots_get(
            project=project, external_ids=sorted({e.customer for e in events}), with_usage=False
        ).items()
    }
    for customer, feature_key in {(e.customer, e.feature) for e in events}:
        if feature_key not in structures[customer]["features"]:  # not listed yet: read it from the database
            structures[customer] = ent_cache.structure_fresh(project=project, external_id=customer)
    _entities_check(project, events, structures, at)
    seen: set[str] = set()
    pricer = UsagePricer(project, features)
    # An event with dimensions already recorded (a retry) is never refused by its pricing: the formula or the cost
    # table in force may have changed since, and the insert skips it whatever its price. Looked up only when a
    # pricing fails (one query a batch, at most): a batch that prices is not slowed by it.
    recorded: set[str] | None = None
    priced: dict[str, tuple[dict[str, Any], int | None]] = {}  # by event id: stored dimensions, cost
    planned: list[tuple[UsageInput, datetime, resolver.Period]] = []
    current: dict[tuple[str, str], resolver.Period] = {}
    counted_seen: list[tuple[str, resolver.Period]] = []  # earlier periods found for late events
    duplicates = 0
    for index, event in enumerate(events):
        structure = structures[event.customer]
        entry = structure["features"][event.feature]
        # A test clock's customer's usage is stamped and judged at the clock's time, where Stripe's meter takes it.
        judged = judged_at(structure, now)
        if event.timestamp is None and (event.customer, event.feature) in current:
            period, timestamp = current[(event.customer, event.feature)], judged
        else:
            timestamp = event.timestamp or judged
            period = usage_period_for(
                entry,
                timestamp,
                judged,
                structure["usage_grace_seconds"],
                at(index, "timestamp"),
                event.no_billing,
                structure["customer_id"],
                counted_seen,
            )
            if event.no_billing and "credits" in entry and period.end <= judged:
                raise InvalidRequest(
                    f"{at(index, 'no_billing_side_effects')}: {event.feature!r} pays usage past its allowance with "
                    "credits (spent now): a closed period cannot be backfilled without that billing side effect.",
                    code="invalid_parameter",
                    param=at(index, "no_billing_side_effects"),
                )
            if event.timestamp is None:
                current[(event.customer, event.feature)] = period
        if event.id in seen:
            duplicates += 1
            continue
        seen.add(event.id)
        if event.dimensions is not None:
            try:
                units, record, cost = pricer.price(
                    feature=event.feature,
                    model=event.model,
                    dimensions=event.dimensions,
                    # Priced at its own time, by the cost table in force then; a test clock's customer's at the real
                    # time (the clock's is not when the call cost what it cost).
                    at=timestamp if structure.get("clock_time") is None else now,
                    param="" if single else f"events[{index}]",
                )
            except InvalidRequest:
                if recorded is None:
                    recorded = usage_keys_recorded(
                        project_id=project.pk, event_ids=[e.id for e in events if e.dimensions is not None]
                    )
                if event.id not in recorded:
                    raise
            else:
                event = event._replace(quantity=units)
                priced[event.id] = (record, cost)
        planned.append((event, timestamp, period))
    customers = {ext: s["customer_id"] for ext, s in structures.items() if s["customer_id"]}
    if len(customers) < len(structures):
        customers.update(customers_ensure(project=project, external_ids=set(structures) - set(customers)))
    ids = new_ids("uev", len(planned))
    feature_ids = {key: feature.pk for key, feature in features.items()}
    metered = {key: bool(feature.stripe_meter_event_name) for key, feature in features.items()}
    # What a feature's events start with on the meter: (status, next attempt), looked up once per event.
    meter = {
        key: (UsageEvent.MeterStatus.PENDING.value, now) if on else ("", None) for key, on in metered.items()
    }
    project_id, kind = project.pk, UsageEvent.Kind.USAGE.value
    rows: list[dict[str, Any]] = []
    for index, (event, timestamp, period) in enumerate(planned):
        status, next_attempt = meter[event.feature]
        backfilled = event.no_billing and bool(status)
        if backfilled:
            status, next_attempt = UsageEvent.MeterStatus.SKIPPED.value, None
        rows.append(
            {
                "id": ids[index],
                "project_id": project_id,
                "customer_id": customers[event.customer],
                "feature_id": feature_ids[event.feature],
                "event_id": event.id,
                "kind": kind,
                "quantity": event.quantity,
                "timestamp": timestamp,
                "period_start": period.start,
                "properties": event_properties(event),
                "meter_status": status,
                "meter_next_attempt_at": next_attempt,
                "created_at": now,
            }
        )
        if backfilled:
            rows[-1]["meter_error"] = BACKFILLED
        if event.id in priced:
            rows[-1]["dimensions"], rows[-1]["cost_micros"] = priced[event.id]
    # Months without a partition yet get theirs before the batch's transaction, so its DDL locks end at once.
    usage_partitions_ensure(
        months={month_of(moment) for moment in {timestamp for _, timestamp, _ in planned}}
    )
    with transaction.atomic():
        inserted = _events_insert(rows)
        capped = {  # customers with an account cap: locked before any counter (`services.account_caps`)
            customers[event.customer]: (structures[event.customer], event.feature)
            for event, _, _ in planned
            if event.id in inserted and "account_cap" in structures[event.customer]["features"][event.feature]
        }
        locked = account_caps_lock(uses=capped) if capped else {}
        additions: dict[tuple[str, str, datetime], tuple[datetime, int]] = {}
        metered_pending = False
        touched: set[str] = set()
        in_windows: list[tuple[str, str, str, datetime, int]] = []
        in_entity_windows: list[tuple[str, str, str, str, datetime, int]] = []
        paid: list[tuple[UsageInput, resolver.Period, dict[str, Any]]] = []  # credits waterfalls', in order
        steps: dict[tuple[str, str, datetime], list[int]] = {}  # each counter's events' quantities, in order
        for index, (event, timestamp, period) in enumerate(planned):
            if event.id not in inserted:
                continue
            key = (customers[event.customer], feature_ids[event.feature], period.start)
            # An event stamped ahead (clock skew, up to MAX_FUTURE_SECONDS) counts in the window running now: a
            # window's row never moves ahead of the present, where a consume would find it and not its own.
            present = judged_at(structures[event.customer], now)
            in_window_at = min(timestamp, present)
            # An event of a window already over counts in none of that size (its period only).
            windowed = [
                (key[0], key[1], name, in_window_at, event.quantity)
                for name, _ in structures[event.customer]["features"][event.feature].get("windows", ())
                if window_start(name, in_window_at) == window_start(name, present)
            ]
            if event.entity is not None:  # and in the entity's own windows, the same way
                in_entity_windows += [
                    (key[0], key[1], event.entity, name, in_window_at, event.quantity)
                    for name, _ in entity_windows(structures[event.customer]["features"][event.feature])
                    if window_start(name, in_window_at) == window_start(name, present)
                ]
            if "credits" in structures[event.customer]["features"][event.feature]:
                paid.append((event, period, rows[index]))
                in_windows += windowed
                touched.add(event.customer)
                metered_pending = metered_pending or metered[event.feature]
                continue
            end, amount = additions.get(key, (period.end, 0))
            additions[key] = (end, amount + event.quantity)
            steps.setdefault(key, []).append(event.quantity)
            in_windows += windowed
            touched.add(event.customer)
            metered_pending = metered_pending or metered[event.feature]
        totals = _counters_add(project.pk, additions)
        entities_add(
            project_id=project.pk,
            uses=[
                (customers[event.customer], feature_ids[event.feature], event.entity, period, event.quantity)
                for event, _, period in planned
                if event.entity is not None and event.id in inserted
            ],
        )
        _waterfalls_record(project, paid, structures, customers, now)
        in_window = windows_add(project_id=project.pk, additions=in_windows)
        by_customer_id = {pk: external_id for external_id, pk in customers.items()}
        key_of = {f.pk: f.key for f in features.values()}
        # Each window filled, the account's and the entities' own ("" for the account's), announced in key order.
        filled = {
            (customer_id, feature_id, "", name): found
            for (customer_id, feature_id, name), found in in_window.items()
        }
        filled.update(entity_windows_add(project_id=project.pk, additions=in_entity_windows))
        reached: dict[tuple[str, str, str], dict[str, tuple[float, int, int]]] = {}
        for (customer_id, feature_id, entity, name), (start, added, used) in filled.items():
            reached.setdefault((customer_id, feature_id, entity), {})[name] = (start.timestamp(), added, used)
        for (customer_id, feature_id, entity), counted in sorted(reached.items()):
            external_id = by_customer_id[customer_id]
            windows_reached(
                project=project,
                customer_id=customer_id,
                external_id=external_id,
                feature_key=key_of[feature_id],
                entry=structures[external_id]["features"][key_of[feature_id]],
                counted=counted,
                entity=entity or None,
            )
        for (customer_id, feature_id, start), used in totals.items():
            external_id = by_customer_id[customer_id]
            entry = structures[external_id]["features"][key_of[feature_id]]
            if start.timestamp() == entry["period_start"]:
                _thresholds(
                    project,
                    customer_id,
                    external_id,
                    key_of[feature_id],
                    entry,
                    used - additions[(customer_id, feature_id, start)][1],
                    used,
                    steps=steps.get((customer_id, feature_id, start)),
                )
        if locked:
            in_order: dict[str, list[tuple[str, int, int]]] = {}  # each capped customer's uses this period
            for index, (event, _, period) in enumerate(planned):
                customer_id = customers[event.customer]
                entry = structures[event.customer]["features"][event.feature]
                if (
                    customer_id in locked
                    and event.id in inserted
                    and period.start.timestamp() == entry.get("period_start")
                ):
                    covered = int(rows[index].get("covered", 0))
                    in_order.setdefault(customer_id, []).append((event.feature, event.quantity, covered))
            reached_by = account_caps_reached(
                locked=locked, uses=capped, external_ids=by_customer_id, in_order=in_order
            )
            for crossed in reached_by:
                event_record(project=project, type="usage.cap_reached", data_object=crossed)
        ent_cache.usage_changed(project_id=project.pk, external_ids=sorted(touched))
        if metered_pending:
            transaction.on_commit(lambda: meter_report_queue(project_id=project.pk))
    accepted = len(inserted)
    return accepted, len(events) - accepted, inserted


def _entities_check(
    project: Project,
    events: list[UsageInput],
    structures: dict[str, StructureSnapshot],
    at: Callable[[int, str], str],
) -> None:
    """400 for the first event naming an entity that is not one of its customer's for the feature's limit per
    entity (`entities.entity_for_use`: `unknown_entity`, `entity_not_counted`), each use checked once. An event
    the project recorded before is not checked: a retry is a duplicate, even once its entity is removed."""
    named = [event.id for event in events if event.entity is not None]
    if not named:
        return
    recorded = set(usage_events_of(project_id=project.pk, event_ids=named).values_list("event_id", flat=True))
    checked: set[tuple[str, str, str]] = set()
    for index, event in enumerate(events):
        if event.entity is None or event.id in recorded:
            continue
        if (event.customer, event.feature, event.entity) in checked:
            continue
        structure = structures[event.customer]
        try:
            entity_for_use(
                customer_id=structure["customer_id"],
                feature_key=event.feature,
                entry=structure["features"][event.feature],
                entity_id=event.entity,
            )
        except InvalidRequest as refused:
            raise InvalidRequest(
                f"{at(index, 'entity')}: {refused.message.removeprefix('entity: ')}",
                code=refused.code,
                param=at(index, "entity"),
            ) from None
        checked.add((event.customer, event.feature, event.entity))


def event_properties(event: UsageInput) -> dict[str, Any]:
    """A usage event's stored properties: the tenant's, and the entity it names (`entity`)."""
    if event.entity is None:
        return event.properties or {}
    return {**(event.properties or {}), "entity": event.entity}


def _waterfalls_record(
    project: Project,
    paid: list[tuple["UsageInput", resolver.Period, dict[str, Any]]],
    structures: dict[str, StructureSnapshot],
    customers: dict[str, str],
    now: datetime,
) -> None:
    """Recorded usage of credits waterfall features, in the batch's transaction: each event's units past the
    allowance are paid from the waterfall's credits while they last (the event carries them, `covered`), the
    rest counted past the limit as any recorded usage is. The counters are locked first, in key order, and the
    credit lots after them, as a consume locks them: two batches, or a batch and a consume, never wait on each
    other crosswise."""
    if not paid:
        return
    ordered = sorted(
        paid, key=lambda item: (customers[item[0].customer], item[2]["feature_id"], item[1].start)
    )
    for _, period, row in ordered:
        counter_lock(project.pk, row["customer_id"], row["feature_id"], period.start, period.end)
    for event, period, row in ordered:
        structure = structures[event.customer]
        entry = structure["features"][event.feature]
        steps = waterfall_take(
            project=project,
            customer_id=row["customer_id"],
            external_id=event.customer,
            structure=structure,
            entry=entry,
            period_start=period.start,
            period_end=period.end,
            quantity=event.quantity,
            reference=event.id,
            ledger_type=CreditLedgerEntry.Type.CONSUME,
            hold=False,
            now=judged_at(structure, now),
            recorded=True,
            entity=event.entity,
        )
        assert steps is not None  # recorded usage is never refused
        if steps.credits:
            usage_event_covered(row, steps.credits)
        if period.start.timestamp() == entry["period_start"]:
            _thresholds(
                project,
                row["customer_id"],
                event.customer,
                event.feature,
                entry,
                steps.own_before,
                steps.used - steps.covered,
            )


def usage_record(*, project: Project, event: UsageInput) -> tuple[UsageEvent, bool]:
    """Records one usage event; returns it and whether it was new (the same id again is the stored event)."""
    _, _, inserted = usage_record_batch(project=project, events=[event], single=True)
    stored = (
        usage_events_of(project_id=project.pk, event_ids=[event.id])
        .select_related("customer", "feature")
        .get()
    )
    return stored, event.id in inserted


def usage_thresholds_announce(
    *,
    project: Project,
    customer_id: str,
    external_id: str,
    feature_key: str,
    entry: FeatureEntry,
    before: int,
    after: int,
) -> None:
    """`_thresholds` for a use that went from `before` to `after` outside a batch (an amended event)."""
    _thresholds(project, customer_id, external_id, feature_key, entry, before, after)


def _thresholds(
    project: Project,
    customer_id: str,
    external_id: str,
    feature_key: str,
    entry: FeatureEntry,
    before: int,
    after: int,
    judged: AccountJudged | None = None,
    steps: list[int] | None = None,
) -> None:
    """Announces each usage threshold (`counters.usage_marks`: 80 %, 100 % and the tenant's own) that usage went
    over from `before` to `after`, once per period (`ThresholdCrossing`), in the caller's transaction; and the
    account cap the use was judged under (`judged`), when it reached it. `steps`: a batch's quantities of this
    counter in order, so that each announcement's `used` is the use at the event that reached its mark, as the
    same events sent one by one say (else `after`)."""
    reached = account_cap_reached(
        external_id=external_id, key=feature_key, entry=entry, judged=judged, before=before, after=after
    )
    if reached is not None:
        event_record(project=project, type="usage.cap_reached", data_object=reached)
    limit = entry["limit"]
    for label, mark in usage_marks(entry):
        period_start = datetime.fromtimestamp(entry["period_start"], UTC)
        if before < mark <= after and crossing_insert(
            project.pk, customer_id, entry["id"], period_start, label
        ):
            at_mark = _used_at_mark(before, steps, mark) if steps else after
            if label == CAP_LABEL:
                _cap_reached(project, external_id, feature_key, entry, at_mark)
                continue
            own = label not in _DEFAULT_LABELS
            event_record(
                project=project,
                type="usage.threshold_reached",
                data_object={
                    "customer": external_id,
                    "feature": feature_key,
                    "threshold": round(mark / limit, 4) if limit else None,
                    "threshold_id": label if own else None,
                    "units": math.ceil(mark),
                    "limit": limit,
                    "used": at_mark,
                    "period_start": resolver.iso_epoch(entry.get("period_start")),
                    "period_end": resolver.iso_epoch(entry.get("period_end")),
                },
            )


_DEFAULT_LABELS = frozenset(str(threshold) for threshold in THRESHOLDS)


def _used_at_mark(before: int, steps: list[int], mark: float) -> int:
    """The use after the first of `steps` (added in order to `before`) that takes it to `mark` or past it."""
    used = before
    for quantity in steps:
        used += quantity
        if used >= mark:
            break
    return used


def _cap_reached(
    project: Project, external_id: str, feature_key: str, entry: FeatureEntry, used: int
) -> None:
    """`usage.cap_reached`: use reached the spend cap (`attach.caps_attach`), once per period."""
    cap = entry["cap"]
    price = cap.get("price")
    event_record(
        project=project,
        type="usage.cap_reached",
        data_object={
            "customer": external_id,
            "feature": feature_key,
            "scope": "feature",
            "at_cap": cap["at_cap"],
            "units": cap.get("units"),
            "amount": cap.get("amount"),
            "currency": cap.get("currency"),
            "cap_limit": cap["limit"],
            "used": used,
            "amount_billed": terms_amount(price, used) if price else 0,
            "period_start": resolver.iso_epoch(entry.get("period_start")),
            "period_end": resolver.iso_epoch(entry.get("period_end")),
        },
    )
