"""Point-in-time answers (`as_of` on `GET /entitlements/check` and `GET /entitlements`): what a customer could use
at a past instant, recomputed from what Tollgate had recorded by then rather than from its counters now.

- **What gave what**: `resolver.resolve_structure_at` — each subscription as its newest version recorded by then
  said, and the grants, revocations and purchases recorded by then and not yet ended then (`records_at`).
- **Usage, from the ledgers**: metered use = the period's usage events recorded by then; allocation units in use =
  consumes − releases recorded by then, plus the entities live then (each holds a unit); a credit balance = the
  credit ledger's entries by then, on the lots not expired then; units held = each hold active then, less what
  was reported against it by then; each usage window current then = the usage recorded in it by then and not
  stamped before it, and the units of holds active then that were taken from it, less what was reported against
  them by then; an entity's use = the period's usage events naming it recorded by then, and the units of holds
  naming it active then, less what was reported by then (`entity_used_at`, for an entity live then).
- **Corrections** made after the instant are taken back out of each of these (`_corrected_since`): an event
  counts what it counted then, not the quantity a later correction gave it.

The catalog (what each product gives), the project's settings and default product are today's: the audit log
has their history.
"""

from datetime import UTC, datetime
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum

from catalog.models import Feature
from customers.models import Customer
from entitlements import resolver
from entitlements.entities import entity_windows
from entitlements.models import CreditLedgerEntry, Entity, Hold, UsageCorrection, UsageEvent
from entitlements.snapshot import FeatureEntry, StructureSnapshot, UsageSnapshot
from entitlements.waterfall import hold_credits_held, hold_paid_held
from entitlements.windows import window_bounds
from projects.models import Project


def snapshot_at(
    *, project: Project, external_id: str, at: datetime
) -> tuple[StructureSnapshot, UsageSnapshot]:
    """The customer's structure and usage as of `at` (a customer unknown then, or now, gets the default
    product's answer)."""
    customer = Customer.objects.filter(project=project, external_id=external_id).first()
    structure = resolver.resolve_structure_at(project=project, customer=customer, at=at)
    return structure, usage_at(customer_id=customer.pk if customer else None, structure=structure, at=at)


def usage_at(*, customer_id: str | None, structure: StructureSnapshot, at: datetime) -> UsageSnapshot:
    """`usage_read.resolve_usage` as of `at`, from the usage events, the credit ledger and the holds."""
    counts: dict[str, dict[str, int]] = {"used": {}, "in_use": {}, "balance": {}, "held": {}}
    features = structure["features"]
    by_id = {entry["id"]: key for key, entry in features.items()}
    kinds = {key: entry["type"] for key, entry in features.items()}
    if customer_id is not None:
        held, covered = _held_at(customer_id, structure, at)
        counted = [fid for fid, key in by_id.items() if kinds[key] in resolver.COUNTED]
        events = UsageEvent.objects.filter(
            customer_id=customer_id, feature_id__in=counted, created_at__lte=at
        )
        for feature_id, kind, period_start, total, paid in (
            events.values_list("feature_id", "kind", "period_start")
            .annotate(total=Sum("quantity"), paid=Sum("covered"))
            .order_by()
        ):
            key = by_id[feature_id]
            entry = features[key]
            if kinds[key] == Feature.Type.ALLOCATION:
                sign = -1 if kind == UsageEvent.Kind.RELEASE else 1
                counts["in_use"][key] = counts["in_use"].get(key, 0) + sign * int(total)
            elif period_start is not None and period_start.timestamp() == entry.get("period_start"):
                counts["used"][key] = counts["used"].get(key, 0) + int(total)
                if paid:  # a credits waterfall's units paid with credits
                    covered[key] = covered.get(key, 0) + int(paid)
        # The corrections made after `at`, in one read: an event corrected then counted at `at` what it counted
        # before them (the event holds the corrected quantity), and the later units one moved from credits to the
        # allowance (`UsageCorrection.moved`) were paid with credits at `at`: what was known at `at` is answered,
        # not what was learned later.
        for feature_id, period_start, event_at, moves, back, back_paid in (
            UsageCorrection.objects.filter(customer_id=customer_id, feature_id__in=counted, created_at__gt=at)
            .exclude(
                action=UsageCorrection.Action.ALLOWANCE
            )  # its units are in its freeing correction's `moved`
            .annotate(
                back=F("quantity_before") - F("quantity_after"),
                back_paid=F("covered_before") - F("covered_after"),
            )
            .values_list("feature_id", "period_start", "event_created_at", "moved", "back", "back_paid")
        ):
            key = by_id[feature_id]
            if period_start is None or period_start.timestamp() != features[key].get("period_start"):
                continue
            if event_at <= at:
                counts["used"][key] = counts["used"].get(key, 0) + int(back)
                if back_paid:
                    covered[key] = covered.get(key, 0) + int(back_paid)
            paid_then = sum(int(m["units"]) for m in moves if datetime.fromisoformat(m["created_at"]) <= at)
            if paid_then:
                covered[key] = covered.get(key, 0) + paid_then
        credits = [fid for fid, key in by_id.items() if kinds[key] == Feature.Type.CREDITS]
        entries = (
            CreditLedgerEntry.objects.filter(
                customer_id=customer_id, feature_id__in=credits, created_at__lte=at
            )
            .filter(Q(lot__entity="") | Q(lot__returned_at__lte=at))  # the account's then
            .filter(Q(lot__expires_at__isnull=True) | Q(lot__expires_at__gt=at))
            .values_list("feature_id")
            .annotate(total=Sum("amount"))
            .order_by()
        )
        for feature_id, total in entries:
            counts["balance"][by_id[feature_id]] = int(total)
        # Each entity live then holds a unit of its allocation feature (taken at its addition, given back at its
        # removal, with no usage event).
        allocations = [fid for fid, key in by_id.items() if kinds[key] == Feature.Type.ALLOCATION]
        for feature_id, live in (
            Entity.objects.filter(customer_id=customer_id, feature_id__in=allocations, created_at__lte=at)
            .filter(Q(removed_at__isnull=True) | Q(removed_at__gt=at))
            .values_list("feature_id")
            .annotate(live=Count("pk"))
            .order_by()
        ):
            key = by_id[feature_id]
            counts["in_use"][key] = counts["in_use"].get(key, 0) + int(live)
        for key, units in held.items():
            counts["held"][key] = units
            if kinds[key] == Feature.Type.METERED:
                counts["used"][key] = counts["used"].get(key, 0) + units  # held units count as used
            elif kinds[key] == Feature.Type.ALLOCATION:
                counts["in_use"][key] = counts["in_use"].get(key, 0) + units
    usage: UsageSnapshot = {
        "customer_id": customer_id,
        "used": counts["used"],
        "in_use": counts["in_use"],
        "balance": counts["balance"],
        "held": counts["held"],
        "valid_until": None,
    }
    if customer_id is not None:
        windows = _windows_at(customer_id, structure, at)
        if windows:
            usage["windows"] = windows
        if covered:
            usage["covered"] = covered
    return usage


def _windows_at(
    customer_id: str, structure: StructureSnapshot, at: datetime
) -> dict[str, dict[str, list[Any]]]:
    """Each usage window current at `at`, as the live counters had it then: the usage recorded in it by then and
    not stamped before it (consumes and recorded usage); and of each hold that took its units from it
    (`Hold.windows`, at its creation), what was reported or confirmed against it by then — counted there,
    whenever it was — and, active then, the units it still held."""
    counted: dict[str, dict[str, list[Any]]] = {}
    for key, entry in structure["features"].items():
        for name, _ in entry.get("windows", ()):
            counted.setdefault(key, {})[name] = _window_at(customer_id, entry["id"], name, at)
    return counted


def entity_windows_at(
    *, customer_id: str, entry: FeatureEntry, entity_id: str, at: datetime
) -> dict[str, list[Any]]:
    """The entity's own usage windows (`per_entity.windows`) current at `at`, as their live counters had them
    then, by `_windows_at`'s rule: the usage naming it, and the holds naming it that took their units from them
    (`Hold.entity_windows`)."""
    return {
        name: _window_at(customer_id, entry["id"], name, at, entity_id) for name, _ in entity_windows(entry)
    }


def _window_at(
    customer_id: str, feature_id: str, name: str, at: datetime, entity: str | None = None
) -> list[Any]:
    """[start, used, held] of the window `name` current at `at`, the account's (or `entity`'s own)."""
    start, _ = window_bounds(name, at.timestamp())
    begins = datetime.fromtimestamp(start, UTC)
    own = {} if entity is None else {"properties__entity": entity}
    # As live counted them: recorded in this window and not stamped before it (an event stamped ahead counted in
    # the window it was recorded in; one of a window already over, in none).
    counted = (
        UsageEvent.objects.filter(
            customer_id=customer_id,
            feature_id=feature_id,
            created_at__gte=begins,
            created_at__lte=at,
            timestamp__gte=begins,
            **own,
        )
        .exclude(kind=UsageEvent.Kind.RELEASE)
        .exclude(kind=UsageEvent.Kind.CONSUME, properties__hold__isnull=False)  # a hold's: below
    )
    used = int(counted.aggregate(total=Sum("quantity"))["total"] or 0)
    used += sum(_corrected_since(customer_id, [feature_id], at, counted).values())
    holding = Hold.objects.filter(customer_id=customer_id, feature_id=feature_id, created_at__lte=at)
    if entity is not None:
        holding = holding.filter(entity=entity)
    holds = [
        hold
        for hold in holding.filter(Q(ended_at__isnull=True) | Q(ended_at__gte=begins)).only(
            "hold_id", "quantity", "windows", "entity_windows", "ended_at"
        )
        if (hold.windows if entity is None else hold.entity_windows).get(name) == start
    ]
    reported = _reported_at(customer_id, [feature_id], [hold.hold_id for hold in holds], at)
    held = sum(
        max(hold.quantity - reported.get(hold.hold_id, 0), 0)
        for hold in holds
        if hold.ended_at is None or hold.ended_at > at
    )
    return [start, used + sum(reported.values()) + held, held]


def _reported_at(
    customer_id: str, feature_ids: list[str], hold_ids: list[str], at: datetime
) -> dict[str, int]:
    """The units reported or confirmed by `at` against each of these holds (of these features), in one query: the
    consumes Tollgate recorded naming them (`properties.hold`; a tenant's usage event may carry a property of
    that name)."""
    if not hold_ids:
        return {}
    reports = UsageEvent.objects.filter(
        customer_id=customer_id,
        feature_id__in=feature_ids,
        kind=UsageEvent.Kind.CONSUME,
        created_at__lte=at,
        properties__hold__in=hold_ids,
    )
    reported = {
        str(hold_id): int(total or 0)
        for hold_id, total in reports.values_list("properties__hold")
        .annotate(total=Sum("quantity"))
        .order_by()
    }
    back = _corrected_since(customer_id, feature_ids, at, reports)
    if back:
        for event_id, hold_id in reports.filter(pk__in=list(back)).values_list("pk", "properties__hold"):
            reported[str(hold_id)] = reported.get(str(hold_id), 0) + back[event_id]
    return reported


def _corrected_since(
    customer_id: str, feature_ids: list[str], at: datetime, events: QuerySet[UsageEvent]
) -> dict[str, int]:
    """Of the events `events` selects (recorded by `at`), what the corrections made after `at` took off each (or,
    amending up, added: negative), by event: added back, each counts what it counted at `at`. One query, and one
    more only when there are such corrections."""
    changes = list(
        UsageCorrection.objects.filter(
            customer_id=customer_id, feature_id__in=feature_ids, event_created_at__lte=at, created_at__gt=at
        ).values_list("usage_event_id", "quantity_before", "quantity_after")
    )
    if not changes:
        return {}
    selected = set(events.filter(pk__in={event for event, _, _ in changes}).values_list("pk", flat=True))
    back: dict[str, int] = {}
    for event, before, after in changes:
        if event in selected:
            back[event] = back.get(event, 0) + before - after
    return back


def _held_at(
    customer_id: str, structure: StructureSnapshot, at: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Units held at `at` per feature key: each hold placed by then and not ended then, less what was reported
    against it by then (a metered hold of another period than the structure's holds nothing in it); and of
    those, the units credits paid (a credits waterfall's hold: its last `covered` units are)."""
    features = structure["features"]
    by_id = {entry["id"]: key for key, entry in features.items()}
    held: dict[str, int] = {}
    covered: dict[str, int] = {}
    holds = list(
        Hold.objects.filter(customer_id=customer_id, feature_id__in=list(by_id), created_at__lte=at).filter(
            Q(ended_at__isnull=True) | Q(ended_at__gt=at)
        )
    )
    if not holds:
        return held, covered
    reported = _reported_at(customer_id, list(by_id), [hold.hold_id for hold in holds], at)
    for hold in holds:
        key = by_id[hold.feature_id]
        used = reported.get(hold.hold_id, 0)
        units = hold.quantity - used
        if units <= 0:
            continue
        paid = hold_paid_held(hold.quantity, used, hold.covered)
        paying = by_id.get(hold.paid_with_id or "")  # its credits are held on the credits feature
        if paid and paying is not None:  # whatever the hold's period: credits have none
            credits = hold_credits_held(hold.quantity, used, hold.covered, hold.credit_cost or 0)
            held[paying] = held.get(paying, 0) + credits
        if hold.period_start is not None and hold.period_start.timestamp() != features[key].get(
            "period_start"
        ):
            continue  # another period's hold holds nothing of this period's
        held[key] = held.get(key, 0) + units
        if paid:
            covered[key] = covered.get(key, 0) + paid
    return held, covered


def entity_balance_at(*, customer_id: str, feature_id: str, entity_id: str, at: datetime) -> int:
    """The entity's own credits of the feature at `at`: the ledger's entries by then on its lots not returned to
    the account by then (`CreditLot.returned_at`) nor expired then."""
    total = (
        CreditLedgerEntry.objects.filter(
            customer_id=customer_id, feature_id=feature_id, created_at__lte=at, lot__entity=entity_id
        )
        .filter(Q(lot__returned_at__isnull=True) | Q(lot__returned_at__gt=at))
        .filter(Q(lot__expires_at__isnull=True) | Q(lot__expires_at__gt=at))
        .aggregate(total=Sum("amount"))["total"]
    )
    return int(total or 0)


def entity_live_at(*, customer_id: str | None, per_entity_feature: str, entity_id: str, at: datetime) -> bool:
    """Whether the customer had the entity `entity_id` of the allocation feature then: added by `at` and not
    removed by then."""
    return (
        customer_id is not None
        and Entity.objects.filter(
            customer_id=customer_id,
            external_id=entity_id,
            feature__key=per_entity_feature,
            created_at__lte=at,
        )
        .filter(Q(removed_at__isnull=True) | Q(removed_at__gt=at))
        .exists()
    )


def entity_used_at(*, customer_id: str, entry: FeatureEntry, entity_id: str, at: datetime) -> int:
    """The entity's use of the metered entry's period as of `at`: the usage events naming it recorded by then
    (consumes, recorded usage, a hold's reported and confirmed units), and the units of holds naming it active
    then, less what was reported against them by then."""
    period_start = datetime.fromtimestamp(entry["period_start"], UTC)
    naming = UsageEvent.objects.filter(
        customer_id=customer_id,
        feature_id=entry["id"],
        created_at__lte=at,
        period_start=period_start,
        properties__entity=entity_id,
    )
    used = int(naming.aggregate(total=Sum("quantity"))["total"] or 0)
    used += sum(_corrected_since(customer_id, [entry["id"]], at, naming).values())
    holds = list(
        Hold.objects.filter(
            customer_id=customer_id,
            feature_id=entry["id"],
            entity=entity_id,
            period_start=period_start,
            created_at__lte=at,
        )
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=at))
        .values_list("hold_id", "quantity")
    )
    held = 0
    if holds:
        reported = _reported_at(customer_id, [entry["id"]], [hold_id for hold_id, _ in holds], at)
        held = sum(max(quantity - reported.get(hold_id, 0), 0) for hold_id, quantity in holds)
    return used + held
