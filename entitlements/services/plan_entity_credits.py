"""Plan credits for each entity (#51 point 5): where a plan's credits feature gives every entity of an allocation
feature credits of its own (`per_entity.credits`, "50 credits a seat a month"), each grant of the feature's plan
credits — a `PlanCreditSlice`: a month or week of a paid period, or the whole period — gives each live entity that
many, in a lot of its own expiring with the grant (`entity_lots_grant`). An entity added while a grant runs is
given its lot of it then (`plan_entity_credits_join`).

Never more than the plan's entities' worth: a grant gives at most as many entity lots as the allocation's limit
(its seats), counting those of entities removed since, and one per entity id — so removing an entity and adding
another, or the same again, gives nothing more until the next grant."""

from datetime import datetime

from django.db.models import Exists, OuterRef

from entitlements import resolver
from entitlements.models import Entity, PlanCreditSlice, PlanPeriod
from entitlements.services.credit_lots import lot_create
from entitlements.services.plan_credits import _owed_take


def entity_lots_grant(item: PlanCreditSlice, *, now: datetime) -> None:
    """The granted slice's lots for the customer's live entities, in the caller's transaction, under the slice's
    row lock: each live entity of the allocation feature the customer's plan names now (`entity_credits`), oldest
    first, that has none of this slice, while fewer of its entity lots than the allocation's limit exist; each
    lot takes back what its entity owes (`entity_owed`: a period this one cut short gave it for unused time).
    `now`: the customer's time, whose plan is read."""
    if item.entity_amount <= 0:
        return
    customer = item.customer
    structure = resolver.resolve_structure(project=customer.project, customer=customer, now=now)
    entry = structure["features"].get(item.feature.key)
    declared = entry.get("entity_credits") if entry is not None and not entry["revoked"] else None
    if declared is None:
        return
    allocation = structure["features"].get(declared["feature"])
    limit = allocation["limit"] if allocation is not None and not allocation["revoked"] else 0
    given = set(item.entity_lots.values_list("entity", flat=True))
    live = (
        Entity.objects.filter(customer=customer, feature__key=declared["feature"], removed_at__isnull=True)
        .order_by("created_at", "pk")
        .values_list("external_id", flat=True)
    )
    for entity in live:
        if limit is not None and len(given) >= int(limit):
            break
        if entity in given:
            continue
        lot = lot_create(
            customer=customer,
            feature=item.feature,
            amount=item.entity_amount,
            expires_at=item.ends_at,
            plan_period=item.plan_period,
            reference=item.plan_period.invoice_id,
            entity=entity,
            plan_slice=item,
        )
        _owed_take(lot, int(item.entity_owed.get(entity, 0)), reference=item.plan_period.invoice_id)
        given.add(entity)


def plan_entity_credits_join(*, customer_id: str, now: datetime) -> None:
    """An entity of the customer's was added at `now` (its customer's time): each grant of
    plan credits per entity running then (granted, not stopped, nor taken back, nor cut short by a new paid
    period of its subscription, a switch monthly ↔ yearly) gives it its lot (`entity_lots_grant`), in the
    caller's transaction. The grants' rows are locked first: a sweep granting one
    now is waited for, and then seen granted; one not granted yet will find the entity when it is."""
    replaced = PlanPeriod.objects.filter(
        customer_id=OuterRef("customer_id"),
        subscription_id=OuterRef("plan_period__subscription_id"),
        period_start__gt=OuterRef("plan_period__period_start"),
        period_start__lte=now,
        revoked_at__isnull=True,
    ).exclude(subscription_id="")
    running = (
        PlanCreditSlice.objects.select_for_update(of=("self",))
        .filter(
            customer_id=customer_id,
            entity_amount__gt=0,
            stopped_at__isnull=True,
            starts_at__lte=now,
            ends_at__gt=now,
            plan_period__revoked_at__isnull=True,
        )
        .exclude(Exists(replaced))
        .select_related("customer__project", "plan_period", "feature")
        .order_by("starts_at", "pk")
    )
    for item in running:
        if item.granted_at is not None:
            entity_lots_grant(item, now=now)
