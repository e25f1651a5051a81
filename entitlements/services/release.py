"""Giving allocation units back (`POST /entitlements/release`: a seat freed), audited with the actor, idempotent by
the tenant's id as a consume is (`services.consume`). A unit one of the customer's live entities holds is not
given back this way: removing the entity gives it back (`services.entities`)."""

from typing import Any

from django.db import transaction

from catalog.models import Feature
from core.actors import Actor
from core.audit import audit_record
from core.errors import InvalidRequest
from core.wording import with_article
from entitlements import cache as ent_cache
from entitlements.models import AllocationCounter, Entity, UsageEvent
from entitlements.services.consume import (
    _answer_now,
    _Denied,
    _Duplicate,
    _event_row,
    _replay,
    _structure_for_consume,
)
from entitlements.services.counters import _allocation_move, _events_insert
from projects.models import Project


def entitlement_release(
    *,
    project: Project,
    actor: Actor,
    event_id: str,
    external_id: str,
    feature_key: str,
    quantity: int,
    reason: str = "",
    read_ahead: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Gives back allocation units (a seat freed), audited with the actor. The same id again changes nothing;
    giving back more than is held → 400."""
    structure, customer_id, entry = _structure_for_consume(project, external_id, feature_key, read_ahead)
    if entry["type"] != Feature.Type.ALLOCATION:
        raise InvalidRequest(
            f"feature: {feature_key!r} is {with_article(entry['type'])} feature; only allocation features are released.",
            code="feature_not_releasable",
            param="feature",
        )
    if customer_id is None:
        raise InvalidRequest(
            f"quantity: the customer holds no units of {feature_key!r}.",
            code="release_exceeds_allocation",
            param="quantity",
        )
    try:
        with transaction.atomic():
            inserted = _events_insert(
                [
                    _event_row(
                        project=project,
                        customer_id=customer_id,
                        feature=entry,
                        event_id=event_id,
                        kind=UsageEvent.Kind.RELEASE,
                        quantity=quantity,
                        period_start=None,
                    )
                ]
            )
            if not inserted:
                raise _Duplicate
            moved = _allocation_move(
                project_id=project.pk,
                customer_id=customer_id,
                feature_id=entry["id"],
                delta=-quantity,
                limit=None,
            )
            if moved is None:
                raise _Denied
            in_use, held = moved
            # The units left must cover both what holds keep and what live entities hold: neither is released here.
            if in_use < held + _entities_live(customer_id, entry["id"]):
                raise _EntitiesHold(in_use + quantity, held)
            counter = AllocationCounter.objects.get(customer_id=customer_id, feature_id=entry["id"])
            audit_record(
                actor=actor,
                action="entitlement.released",
                target=counter,
                project=project,
                reason=reason,
                before={"in_use": in_use + quantity},
                after={"in_use": in_use, "id": event_id, "feature": feature_key, "customer": external_id},
            )
            ent_cache.usage_changed(project_id=project.pk, external_ids=[external_id])
    except _Duplicate:
        _replay(project, event_id, customer_id, entry["id"], quantity, UsageEvent.Kind.RELEASE)
        return _answer_now(structure, customer_id, feature_key, 0, allowed=True, duplicate=True)
    except _Denied:
        raise InvalidRequest(
            f"quantity: the customer holds fewer than {quantity} units of {feature_key!r}.",
            code="release_exceeds_allocation",
            param="quantity",
        ) from None
    except _EntitiesHold as refused:
        live = _entities_live(customer_id, entry["id"])
        units, kept = refused.args
        raise InvalidRequest(
            f"quantity: {live} of the customer's {units} units of {feature_key!r} are their live entities"
            + (f" and {kept} are held" if kept else "")
            + "; remove an entity (DELETE /entitlements/entities/{id}) to give its unit back"
            + (", release a hold to give back its units." if kept else "."),
            code="release_exceeds_allocation",
            param="quantity",
        ) from None
    return _answer_now(structure, customer_id, feature_key, 0, allowed=True)


class _EntitiesHold(Exception):
    """Rolls back a release that would give back a unit one of the customer's live entities holds (args: the
    units in use before, the units holds keep)."""


def _entities_live(customer_id: str, feature_id: str) -> int:
    """How many live entities the customer has of the allocation feature: each holds one of its units, which only
    removing the entity gives back (`services.entities`). Read after the counter's row lock, which an entity's
    addition takes too, so a concurrent addition is counted."""
    return Entity.objects.filter(
        customer_id=customer_id, feature_id=feature_id, removed_at__isnull=True
    ).count()
