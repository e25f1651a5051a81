"""A customer's entities (seats, workspaces, projects: the tenant's own ids) and their own use (issue #51 point 5).

An entity is counted by an allocation feature: adding one takes a unit of it under the allocation counter's
conditional update (refused when the customer's plan has none left), removing one gives the unit back; both are
audited. A metered feature whose plan value declares `per_entity` (`{"feature": "seats", "limit": 50}`) gives
each live entity of that allocation feature its own limit a period beside the account's: a use naming the entity
takes the account's counter first (every limit, window and cap of the account as without an entity), then the
entity's (`entity_take`), in that order on every path, so the two never wait on each other crosswise and
concurrent uses never pass either limit.
"""

from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from catalog.models import Feature
from catalog.selectors import feature_by_key
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidRequest, NotFound
from core.ids import new_id
from core.wording import with_article
from customers.models import Customer
from customers.selectors import customer_now
from entitlements import cache as ent_cache
from entitlements import changes
from entitlements.models import CreditLedgerEntry, CreditLot, Entity, EntityCounter, Hold
from entitlements.periods import Period
from entitlements.services.counters import _allocation_move, _db_time, counted_cap
from entitlements.services.credit_lots import lots_take_back
from entitlements.services.customers import customers_ensure
from entitlements.services.plan_entity_credits import plan_entity_credits_join
from entitlements.services.windows import entity_windows_take, windows_give_back
from entitlements.snapshot import FeatureEntry
from projects.models import Project


def entity_add(
    *, project: Project, external_id: str, feature_key: str, entity_id: str, name: str, actor: Actor
) -> tuple[Entity, bool]:
    """Adds the customer's entity `entity_id`, counted by the allocation feature `feature_key`; (the entity,
    whether it is new). The same id again, of the same feature, is the entity as it is (nothing taken twice).
    409 `allocation_exhausted` when every unit of the feature is in use (nothing added); 400 for a feature that is
    not an allocation feature, or an id the customer already uses for an entity of another feature."""
    feature = feature_by_key(project=project, key=feature_key)
    if feature.type != Feature.Type.ALLOCATION:
        raise InvalidRequest(
            f"feature: {feature.key!r} is {with_article(feature.type)} feature; entities are counted by an "
            "allocation feature (seats, workspaces).",
            code="feature_not_allocation",
            param="feature",
        )
    customer_id = customers_ensure(project=project, external_ids=[external_id])[external_id]
    existing = _live(customer_id, entity_id)
    if existing is not None:
        return _same_feature(existing, feature), False
    structure = ent_cache.structure_fresh(project=project, external_id=external_id)
    entry = structure["features"][feature.key]
    limit = 0 if entry["revoked"] or not entry["enabled"] else counted_cap(entry)
    try:
        with transaction.atomic():
            entity = Entity.objects.create(
                id=new_id("ent"),
                project=project,
                customer_id=customer_id,
                feature=feature,
                external_id=entity_id,
                name=name,
            )
            moved = _allocation_move(
                project_id=project.pk, customer_id=customer_id, feature_id=feature.pk, delta=1, limit=limit
            )
            if moved is None:
                raise Conflict(
                    f"feature: every {feature.key!r} the customer's plan gives is in use ({limit}); remove an "
                    "entity or release a unit first.",
                    code="allocation_exhausted",
                    param="feature",
                )
            # A plan giving each entity credits gives this one its lot of each grant running now.
            customer = Customer.objects.select_related("test_clock").get(pk=customer_id)
            plan_entity_credits_join(customer_id=customer_id, now=customer_now(customer=customer))
            audit_record(
                actor=actor,
                action="entity.added",
                target=entity,
                project=project,
                after={"customer": external_id, "feature": feature.key, "id": entity_id, "name": name},
            )
    except IntegrityError:  # a concurrent add of the same id won: that one stands, nothing taken here
        existing = _live(customer_id, entity_id)
        if existing is None:
            raise
        return _same_feature(existing, feature), False
    ent_cache.usage_changed(project_id=project.pk, external_ids=[external_id])
    return entity, True


def _live(customer_id: str, entity_id: str) -> Entity | None:
    return (
        Entity.objects.select_related("customer", "feature")
        .filter(customer_id=customer_id, external_id=entity_id, removed_at__isnull=True)
        .first()
    )


def _same_feature(entity: Entity, feature: Feature) -> Entity:
    if entity.feature_id != feature.pk:
        raise InvalidRequest(
            f"id: the customer's entity {entity.external_id!r} is counted by {entity.feature.key!r}, not "
            f"{feature.key!r}.",
            code="entity_exists",
            param="id",
        )
    return entity


def entity_rename(*, project: Project, pk: str, name: str, actor: Actor) -> Entity:
    """Renames a live entity (its id, its use and its unit stay); audited."""
    with transaction.atomic():
        entity = _locked(project, pk)
        if entity.removed_at is not None:
            raise InvalidRequest(f"id: the entity {entity.external_id!r} was removed.", code="entity_removed")
        before = entity.name
        Entity.objects.filter(pk=entity.pk).update(name=name)
        entity.name = name
        audit_record(
            actor=actor,
            action="entity.renamed",
            target=entity,
            project=project,
            before={"name": before},
            after={"name": name},
        )
    return entity


def entity_remove(*, project: Project, pk: str, actor: Actor, reason: str = "") -> Entity:
    """Removes an entity: its unit of the allocation feature is given back, and uses naming it are refused from
    now on (`unknown_entity`). Its use this period stays counted, the account's and its own: added again within
    the period, the same id finds it. Its own credits are returned to the account or forfeited, as the plan
    declares (`_credits_end`): added again, the same id starts with none. Removing a removed entity again
    changes nothing."""
    with transaction.atomic():
        entity = _locked(project, pk)
        if entity.removed_at is not None:
            return entity
        entity.removed_at = timezone.now()
        Entity.objects.filter(pk=entity.pk).update(removed_at=entity.removed_at)
        _allocation_move(
            project_id=project.pk,
            customer_id=entity.customer_id,
            feature_id=entity.feature_id,
            delta=-1,
            limit=None,
        )
        credits = _credits_end(project, entity)
        audit_record(
            actor=actor,
            action="entity.removed",
            target=entity,
            project=project,
            reason=reason,
            before={
                "customer": entity.customer.external_id,
                "feature": entity.feature.key,
                "id": entity.external_id,
            },
            after={"credits": credits} if credits else None,
        )
    ent_cache.usage_changed(project_id=project.pk, external_ids=[entity.customer.external_id])
    # Local evaluators hold the entity in their snapshot: the change feed tells them it is gone.
    changes.structure_changed(project_id=project.pk, external_id=entity.customer.external_id)
    return entity


def _credits_end(project: Project, entity: Entity) -> dict[str, dict[str, int]]:
    """What the removed entity's own credit lots still hold goes, in the removal's transaction, as the credits
    feature's plan declares (`entity_credits.on_remove`): "return" makes each lot the account's (`returned_at`:
    what it has left, and what its holds give back later), "forfeit" takes what it has left back (voided, a
    `forfeited` ledger entry; its holds give nothing back). A plan that no longer declares it returns them. By
    feature key: {"returned": credits, "forfeited": credits}."""
    lots = list(
        CreditLot.objects.select_for_update(of=("self",))
        .select_related("feature")
        .filter(
            customer_id=entity.customer_id,
            entity=entity.external_id,
            returned_at__isnull=True,
            voided_at__isnull=True,
        )
        # the spending order (`credit_lots_locked`): a use naming the entity locks them in the same order
        .order_by("priority", F("expires_at").asc(nulls_last=True), "created_at", "pk")
    )
    if not lots:
        return {}
    features = ent_cache.structure_fresh(project=project, external_id=entity.customer.external_id)["features"]
    now = timezone.now()
    ended: dict[str, dict[str, int]] = {}
    chosen: dict[str, list[str]] = {"returned": [], "forfeited": []}
    for lot in lots:
        entry = features.get(lot.feature.key)
        declared = entry.get("entity_credits") if entry is not None else None
        way = "forfeited" if declared is not None and declared["on_remove"] == "forfeit" else "returned"
        ended.setdefault(lot.feature.key, {"returned": 0, "forfeited": 0})[way] += lot.remaining
        chosen[way].append(lot.pk)
    CreditLot.objects.filter(pk__in=chosen["returned"]).update(returned_at=now)
    lots_take_back(
        CreditLot.objects.filter(pk__in=chosen["forfeited"]),
        now=now,
        reference=entity.pk,
        kind=CreditLedgerEntry.Type.FORFEITED,
    )
    return ended


def _locked(project: Project, pk: str) -> Entity:
    entity = (
        Entity.objects.select_for_update(of=("self",))
        .select_related("customer", "feature")
        .filter(project=project, pk=pk)
        .first()
    )
    if entity is None:
        raise NotFound(f"No such entity: {pk!r}.", param="id")
    return entity


def entity_take(
    *,
    project_id: str,
    customer_id: str,
    feature_id: str,
    entity_id: str,
    period_start: datetime,
    period_end: datetime,
    quantity: int,
    limit: int | None,
) -> int | None:
    """used += quantity on the entity's counter of the period if that stays within `limit`, atomically (the row's
    lock, as the account's counter); the new used, or None (refused: the caller rolls back)."""
    table = connection.ops.quote_name(EntityCounter._meta.db_table)
    condition = "" if limit is None else " AND used + %s <= %s"
    params: list[Any] = [quantity, _db_time(timezone.now()), customer_id, feature_id, entity_id]
    params.append(_db_time(period_start))
    if limit is not None:
        params += [quantity, limit]
    sql = (
        f"UPDATE {table} SET used = used + %s, updated_at = %s "  # noqa: S608
        f"WHERE customer_id = %s AND feature_id = %s AND entity = %s AND period_start = %s{condition} "
        "RETURNING used"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if row is None:  # refused, or the entity's counter of the period does not exist yet
            EntityCounter.objects.bulk_create(
                [
                    EntityCounter(
                        project_id=project_id,
                        customer_id=customer_id,
                        feature_id=feature_id,
                        entity=entity_id,
                        period_start=period_start,
                        period_end=period_end,
                    )
                ],
                ignore_conflicts=True,
            )
            cursor.execute(sql, params)
            row = cursor.fetchone()
    return int(row[0]) if row is not None else None


def entity_hold(
    project: Project, hold: Hold, external_id: str, feature_key: str, entry: FeatureEntry, period: Period
) -> bool:
    """A metered hold naming an entity takes its units on the entity's counter too, after the account's, and
    from the entity's own windows, keeping which windows they came from (`Hold.entity_windows`) to give back what
    it does not use (False: refused, the caller rolls back)."""
    if (
        entity_take(
            project_id=hold.project_id,
            customer_id=hold.customer_id,
            feature_id=hold.feature_id,
            entity_id=hold.entity,
            period_start=period.start,
            period_end=period.end,
            quantity=hold.quantity,
            limit=int(entry["per_entity"]["limit"]),
        )
        is None
    ):
        return False
    taken = entity_windows_take(
        project=project,
        customer_id=hold.customer_id,
        external_id=external_id,
        feature_key=feature_key,
        entry=entry,
        entity=hold.entity,
        quantity=hold.quantity,
        at=hold.created_at,
        hold=True,
    )
    if taken is None:
        return False
    if taken:
        hold.entity_windows = {name: counted[0] for name, counted in taken.items()}
        Hold.objects.filter(pk=hold.pk).update(entity_windows=hold.entity_windows)
    return True


def entity_give_back(hold: Hold, *, held: int, returned: int) -> None:
    """What a hold naming an entity gives back (released, expired, confirmed for less) leaves the entity's
    counter of the hold's period as it leaves the account's, and its own windows as the account's: `held` stop
    being held there and `returned` of them stop counting as used."""
    if not hold.entity or hold.period_start is None:
        return
    if returned:
        EntityCounter.objects.filter(
            customer_id=hold.customer_id,
            feature_id=hold.feature_id,
            entity=hold.entity,
            period_start=hold.period_start,
        ).update(used=F("used") - returned, updated_at=timezone.now())
    windows_give_back(
        customer_id=hold.customer_id,
        feature_id=hold.feature_id,
        starts=hold.entity_windows,
        held=held,
        returned=returned,
        entity=hold.entity,
    )


def entities_add(*, project_id: str, uses: list[tuple[str, str, str, Period, int]]) -> None:
    """Recorded usage naming entities ((customer id, feature id, entity, period, units) each) counts on their
    counters, never refused (as recorded usage is not), in key order after the account's counters: the lock
    order every path keeps."""
    added: dict[tuple[str, str, str, datetime], tuple[datetime, int]] = {}
    for customer_id, feature_id, entity_id, period, units in uses:
        key = (customer_id, feature_id, entity_id, period.start)
        end, total = added.get(key, (period.end, 0))
        added[key] = (end, total + units)
    for (customer_id, feature_id, entity_id, start), (end, units) in sorted(added.items()):
        entity_take(
            project_id=project_id,
            customer_id=customer_id,
            feature_id=feature_id,
            entity_id=entity_id,
            period_start=start,
            period_end=end,
            quantity=units,
            limit=None,
        )
