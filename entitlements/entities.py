"""Reading a customer's entities for a use or a check (issue #51 point 5): whether the entity a use names is one
of theirs for the feature (`entity_for_use`), its use this period (`entity_used`), and an answer judged for it as
well as for the account (`entity_apply`, pure). Their writes are `services.entities`'."""

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.db.models import Case, F, Min, Q, Sum, Value, When
from django.utils import timezone

from catalog.rules import windows_ordered
from core.errors import InvalidRequest, NotFound
from entitlements.models import CreditLot, Entity, EntityCounter, EntityWindowCounter
from entitlements.periods import period_from_snapshot
from entitlements.snapshot import FeatureEntry, StructureSnapshot
from entitlements.windows import retry_after, window_bounds, windows_answer


def entity_for_use(
    *, customer_id: str | None, feature_key: str, entry: FeatureEntry, entity_id: str, lock: bool = False
) -> str:
    """The entity a check or a use of `feature_key` names, checked: the feature has a limit per entity (a credits
    feature: credits per entity) and `entity_id` is a live entity of the customer counted by its allocation
    feature; else 400 (`entity_not_counted`, `unknown_entity`). `lock` (in a transaction): its row stays locked
    to the end of it, so its removal (`entity_remove`) waits, or has already committed and it is unknown."""
    per_entity = entry.get("per_entity") or entry.get("entity_credits")
    if per_entity is None:
        what = "credits" if entry["type"] == "credits" else "limit"
        raise InvalidRequest(
            f"entity: {feature_key!r} has no {what} per entity in the customer's plan.",
            code="entity_not_counted",
            param="entity",
        )
    rows = Entity.objects.filter(
        customer_id=customer_id,
        external_id=entity_id,
        feature__key=per_entity["feature"],
        removed_at__isnull=True,
    )
    if lock:
        rows = rows.select_for_update(of=("self",))
    live = customer_id is not None and rows.values_list("pk", flat=True).first() is not None
    if not live:
        raise InvalidRequest(
            f"entity: the customer has no {per_entity['feature']!r} entity {entity_id!r}.",
            code="unknown_entity",
            param="entity",
        )
    return entity_id


def entity_used(*, customer_id: str, feature_id: str, entity_id: str, period_start: datetime) -> int:
    """The entity's use of the feature in the period that starts at `period_start`."""
    found = (
        EntityCounter.objects.filter(
            customer_id=customer_id, feature_id=feature_id, entity=entity_id, period_start=period_start
        )
        .values_list("used", flat=True)
        .first()
    )
    return int(found or 0)


def waterfall_entity(structure: StructureSnapshot, entry: FeatureEntry, entity: str | None) -> str | None:
    """The entity whose own credits a use of the metered `entry` naming `entity` spends first in its credits
    waterfall, then the account's: `entity` where the waterfall's credits feature lets the entities of the same
    allocation feature hold credits (`entity_credits`); else None (the account's credits only)."""
    if not entity or "credits" not in entry or "per_entity" not in entry:
        return None
    paying = structure["features"].get(entry["credits"]["feature"])
    declared = paying.get("entity_credits") if paying is not None else None
    return entity if declared is not None and declared["feature"] == entry["per_entity"]["feature"] else None


def entity_usage(
    usage: Any,
    structure: StructureSnapshot,
    entry: FeatureEntry,
    entity: str | None,
    now: float | datetime | None = None,
    own: int | None = None,
) -> Any:
    """`usage` as a use of the metered `entry` naming `entity` sees it: its credits waterfall's balance is the
    entity's own credits (at `now`, or `own` given) and the account's (`waterfall_entity`); else `usage`."""
    customer_id = structure["customer_id"]
    if waterfall_entity(structure, entry, entity) is None or customer_id is None:
        return usage
    key = entry["credits"]["feature"]
    if own is None:
        own = credit_balances(str(customer_id), structure["features"][key]["id"], now).get(str(entity), 0)
    if not own:
        return usage
    return {**usage, "balance": {**usage["balance"], key: usage["balance"].get(key, 0) + own}}


def entity_windows(entry: FeatureEntry) -> list[list[Any]]:
    """The entity's own usage windows of the metered entry (`per_entity.windows`), [[name, limit], …] shortest
    first; [] without."""
    per_entity = entry.get("per_entity") or {}
    return [[name, limit] for name, limit in windows_ordered(per_entity.get("windows")).items()]


def entity_windows_counted(*, customer_id: str, feature_id: str, entity_id: str) -> dict[str, list[Any]]:
    """What the entity's own window counters hold: {window: [its start (Unix seconds), used, held]}."""
    return entities_windows_counted(
        customer_id=customer_id, feature_id=feature_id, entity_ids=[entity_id]
    ).get(entity_id, {})


def entities_windows_counted(
    *, customer_id: str, feature_id: str, entity_ids: Sequence[str]
) -> dict[str, dict[str, list[Any]]]:
    """`entity_windows_counted` of several entities in one query, by entity id."""
    counted: dict[str, dict[str, list[Any]]] = {}
    for entity, span, start, used, held in EntityWindowCounter.objects.filter(
        customer_id=customer_id, feature_id=feature_id, entity__in=list(entity_ids)
    ).values_list("entity", "span", "window_start", "used", "held"):
        counted.setdefault(entity, {})[span] = [start.timestamp(), used, held]
    return counted


def entities_windows_now(
    *, customer_id: str, entry: FeatureEntry, entity_ids: Sequence[str], now: float
) -> dict[str, list[dict[str, Any]]]:
    """Each entity's own windows at `now` as a snapshot carries them (the answers' shape, `resets_at` in Unix
    seconds), by entity id; {} where the entities have no windows of their own."""
    limits = entity_windows(entry)
    if not limits or not entity_ids:
        return {}
    counted = entities_windows_counted(customer_id=customer_id, feature_id=entry["id"], entity_ids=entity_ids)
    windows: dict[str, list[dict[str, Any]]] = {}
    for entity in entity_ids:
        answers, _, _ = windows_answer(limits, counted.get(entity, {}), 0, now)
        for answer in answers:
            answer["resets_at"] = window_bounds(answer["window"], now)[1]
        windows[entity] = answers
    return windows


def entity_windows_end(structure: StructureSnapshot, now: float) -> float | None:
    """When the shortest of the entities' own windows of any feature ends at `now` (a snapshot holding their
    counts is good until then), or None where none has any."""
    ends = [
        window_bounds(limits[0][0], now)[1]
        for entry in structure["features"].values()
        if not entry["revoked"] and (limits := entity_windows(entry))
    ]
    return min(ends, default=None)


def entity_credits_end(structure: StructureSnapshot, now: float) -> float | None:
    """When the first of the entities' own credit lots to expire after `now` does (a snapshot holding their
    balances is good until then), or None where the plan lets no entity hold credits, or none expires."""
    customer_id = structure["customer_id"]
    if customer_id is None or not any("entity_credits" in e for e in structure["features"].values()):
        return None
    first = (
        CreditLot.objects.filter(
            customer_id=customer_id,
            returned_at__isnull=True,
            voided_at__isnull=True,
            remaining__gt=0,
            expires_at__gt=datetime.fromtimestamp(now, UTC),
        )
        .exclude(entity="")
        .aggregate(first=Min("expires_at"))["first"]
    )
    return None if first is None else first.timestamp()


def entity_apply(
    answer: dict[str, Any],
    entry: FeatureEntry,
    entity_id: str,
    used: int,
    quantity: int,
    now: float | None = None,
    counted: dict[str, list[Any]] | None = None,
) -> dict[str, Any]:
    """`answer` (a metered feature's, for the account) judged for the entity too: `entity` is {id, feature,
    limit, used, remaining, windows, binding}, `windows` its own usage windows as the account's are answered
    (from `counted`, their counters: {window: [start, used, held]}); where `quantity` more does not fit the
    entity's own limit or one of its windows, the answer refuses it: `entity.binding` names the window (or
    "period") that refuses it for longest, and where the entity refuses it for longer than the account (or
    alone), `binding` is "entity" and `retry_after` the seconds from `now`, by default the present, until that
    frees up (None: never)."""
    limit = int(entry["per_entity"]["limit"])
    at = time.time() if now is None else now
    windows, binding, frees = windows_answer(entity_windows(entry), counted or {}, quantity, at)
    if used + quantity > limit:
        period_frees = entry["period_end"] if quantity <= limit else None
        if binding is None or (frees is not None and (period_frees is None or period_frees >= frees)):
            binding, frees = "period", period_frees
    answer["entity"] = {
        "id": entity_id,
        "feature": entry["per_entity"]["feature"],
        "limit": limit,
        "used": used,
        "remaining": max(0, limit - used),
        "windows": windows,
        "binding": binding,
        "balance": None,
    }
    if binding is not None:
        answer["allowed"] = False
        answer["step"] = None
        wait = retry_after(frees, at)
        if entry["revoked"]:  # refused as the feature is: nothing of the entity's frees it up
            pass
        elif answer.get("binding") is None or (
            answer.get("retry_after") is not None and (wait is None or wait > answer["retry_after"])
        ):  # the entity refuses it for longer than the account does (or alone)
            answer["binding"] = "entity"
            answer["retry_after"] = wait
    return answer


def entities_live(*, project_id: str, external_id: str) -> Any:
    """The customer's live entities, oldest first (a QuerySet of `Entity`, with customer and feature)."""
    return (
        Entity.objects.select_related("customer", "feature")
        .filter(project_id=project_id, customer__external_id=external_id, removed_at__isnull=True)
        .order_by("created_at", "pk")
    )


def entity_judged(
    answer: dict[str, Any],
    entry: FeatureEntry,
    customer_id: str,
    entity_id: str,
    quantity: int,
    now: float | None = None,
) -> dict[str, Any]:
    """`entity_apply` with the entity's use in the entry's current period read from the database; `answer` as it
    is where the customer's plan gives the feature no limit per entity (any more: a hold naming an entity ends
    after its plan dropped `per_entity`, or a use recorded then is retried). `now`: the customer's clock (a
    test clock's), by default the present."""
    if entry.get("entity_credits") is not None:
        return entity_credits_apply(
            answer, entry, entity_id, credit_balances(customer_id, entry["id"], now), quantity
        )
    if entry.get("per_entity") is None:
        return answer
    used = entity_used(
        customer_id=customer_id,
        feature_id=entry["id"],
        entity_id=entity_id,
        period_start=period_from_snapshot(entry).start,
    )
    counted = (
        entity_windows_counted(customer_id=customer_id, feature_id=entry["id"], entity_id=entity_id)
        if entity_windows(entry)
        else {}
    )
    return entity_apply(answer, entry, entity_id, used, quantity, now, counted)


def credit_balances(customer_id: str, feature_id: str, now: float | datetime | None = None) -> dict[str, int]:
    """The customer's spendable credits of the feature at `now` (Unix seconds or a time; by default the present)
    by owner: "" the account's, else each entity's own (by the tenant's id); an owner with none is absent."""
    at = (
        now
        if isinstance(now, datetime)
        else timezone.now()
        if now is None
        else datetime.fromtimestamp(now, UTC)
    )
    rows = (
        CreditLot.objects.filter(customer_id=customer_id, feature_id=feature_id, voided_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at))
        .annotate(held_by=Case(When(returned_at__isnull=False, then=Value("")), default=F("entity")))
        .values_list("held_by")
        .annotate(total=Sum("remaining"))
        .order_by()
    )
    return {owner: int(total or 0) for owner, total in rows}


def entities_credits(*, customer_id: str | None, entry: FeatureEntry, now: float) -> dict[str, Any] | None:
    """A credits entry's entity credits for local checks: `{feature, on_remove, balances}`, each live entity's
    own balance at `now` by its id (0 for one with none); None where the plan declares none or the feature is
    revoked."""
    declared = entry.get("entity_credits")
    if declared is None or entry["revoked"]:
        return None
    balances: dict[str, int] = {}
    if customer_id is not None:
        owned = credit_balances(customer_id, entry["id"], now)
        for entity in Entity.objects.filter(
            customer_id=customer_id, feature__key=declared["feature"], removed_at__isnull=True
        ).values_list("external_id", flat=True):
            balances[entity] = owned.get(entity, 0)
    return {**declared, "balances": balances}


def entities_credit_balances(
    structure: StructureSnapshot, entities: Sequence[Entity]
) -> dict[str, list[dict[str, Any]]]:
    """Each entity's own credits (by Tollgate id) of every credits feature whose plan lets the entities of its
    allocation feature hold credits (`entity_credits`), by feature key: [{feature, balance}]; [] for an entity
    no such feature counts. `structure`: the customer's (their plan now)."""
    balances: dict[str, list[dict[str, Any]]] = {entity.pk: [] for entity in entities}
    customer_id = structure["customer_id"]
    for key, entry in sorted(structure["features"].items()):
        declared = entry.get("entity_credits")
        if declared is None or entry["revoked"] or customer_id is None:
            continue
        counted = [entity for entity in entities if entity.feature.key == declared["feature"]]
        if not counted:
            continue
        owned = credit_balances(str(customer_id), entry["id"], structure.get("clock_time"))
        for entity in counted:
            own = 0 if entity.removed_at is not None else owned.get(entity.external_id, 0)
            balances[entity.pk].append({"feature": key, "balance": own})
    return balances


def entity_credits_apply(
    answer: dict[str, Any], entry: FeatureEntry, entity_id: str, balances: dict[str, int], quantity: int
) -> dict[str, Any]:
    """`answer` (a credits feature's, for the account) judged for a use naming the entity, which spends its own
    credits first and then the account's (`balances`: `credit_balances`): `balance` is what it may spend, both,
    `entity.balance` its own; `quantity` more is allowed when the two cover it (not where the feature is
    revoked). `entity` has no limit, use or windows of its own (null, [])."""
    own = balances.get(entity_id, 0)
    spendable = balances.get("", 0) + own
    answer["balance"] = spendable
    answer["entity"] = {
        "id": entity_id,
        "feature": entry["entity_credits"]["feature"],
        "limit": None,
        "used": None,
        "remaining": None,
        "windows": [],
        "binding": None,
        "balance": own,
    }
    if not entry["revoked"]:
        answer["allowed"] = spendable >= quantity
    return answer


def entities_used(*, customer_id: str, entry: FeatureEntry) -> list[tuple[str, int]]:
    """(entity, use this period) of each of the customer's live entities counted by the metered entry's
    `per_entity` feature, the busiest first (then by id)."""
    live = Entity.objects.filter(
        customer_id=customer_id, feature__key=entry["per_entity"]["feature"], removed_at__isnull=True
    ).values_list("external_id", flat=True)
    used = dict(
        EntityCounter.objects.filter(
            customer_id=customer_id,
            feature_id=entry["id"],
            period_start=period_from_snapshot(entry).start,
            entity__in=list(live),
        ).values_list("entity", "used")
    )
    return sorted(((entity, used.get(entity, 0)) for entity in live), key=lambda pair: (-pair[1], pair[0]))


def entity_find(*, project_id: str, pk: str) -> Entity:
    """The project's entity `pk` (`ent_…`), removed or not; 404 for another project's or none."""
    entity = Entity.objects.select_related("customer", "feature").filter(project_id=project_id, pk=pk).first()
    if entity is None:
        raise NotFound(f"No such entity: {pk!r}.", param="id")
    return entity


def entities_usage(
    structure: StructureSnapshot, entities: Sequence[Entity]
) -> dict[str, list[dict[str, Any]]]:
    """Each entity's use this period (by Tollgate id) of every metered feature whose plan gives the entities of
    its allocation feature a limit (`per_entity`), by feature key: [{feature, limit, used, remaining}]; [] for
    an entity no such feature counts. `structure`: the customer's (their plan now)."""
    usage: dict[str, list[dict[str, Any]]] = {entity.pk: [] for entity in entities}
    for key, entry in sorted(structure["features"].items()):
        per_entity = entry.get("per_entity")
        if per_entity is None or entry["revoked"]:
            continue
        counted = [entity for entity in entities if entity.feature.key == per_entity["feature"]]
        if not counted:
            continue
        used = dict(
            EntityCounter.objects.filter(
                customer_id=structure["customer_id"],
                feature_id=entry["id"],
                period_start=period_from_snapshot(entry).start,
                entity__in=[entity.external_id for entity in counted],
            ).values_list("entity", "used")
        )
        limit = int(per_entity["limit"])
        limits = entity_windows(entry)
        windows = (
            entities_windows_counted(
                customer_id=str(structure["customer_id"]),
                feature_id=entry["id"],
                entity_ids=[entity.external_id for entity in counted],
            )
            if limits
            else {}
        )
        now = structure.get("clock_time") or time.time()
        for entity in counted:
            mine = int(used.get(entity.external_id, 0))
            answers, _, _ = windows_answer(limits, windows.get(entity.external_id, {}), 0, now)
            usage[entity.pk].append(
                {
                    "feature": key,
                    "limit": limit,
                    "used": mine,
                    "remaining": max(0, limit - mine),
                    "windows": answers,
                }
            )
    return usage
