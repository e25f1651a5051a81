"""Grants and revocations: a customer's own overrides, made by an operator or a platform key. A grant tops up a
metered, credits or allocation feature or sets a boolean or static one (granted credits become a lot); a
revocation takes a feature away, whatever grants it, until it expires or is deleted. Each is validated, audited,
and followed by the recompute hook, and so is its deletion.
"""

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog.models import Feature
from core.actors import Actor
from core.audit import audit_record
from core.errors import InvalidRequest
from core.serializers import api_time
from core.wording import with_article
from customers.selectors import customer_find, customer_now
from entitlements import cache as ent_cache
from entitlements.entities import entity_for_use
from entitlements.models import CreditLot, Grant, Revocation
from entitlements.models.records import DEFAULT_CREDIT_PRIORITY
from entitlements.services.credit_lots import lot_create, lots_take_back
from entitlements.services.customers import _customer_for
from entitlements.services.recompute import entitlements_recompute
from projects.models import Project


def _future(
    project: Project, external_id: str, expires_at: datetime | None, param: str = "expires_at"
) -> None:
    """`expires_at` is after the customer's now (a test clock's customer's: its clock's time, `customer_now`)."""
    if expires_at is None:
        return
    customer = customer_find(project=project, external_id=external_id)
    if expires_at <= customer_now(customer=customer):
        raise InvalidRequest(f"{param} must be in the future.", code="invalid_parameter", param=param)


def grant_value_parse(*, feature: Feature, value: Any, given: bool) -> Any:
    """Checks a grant's value against the feature type: boolean → true/false (default true); static → any JSON
    (required); metered/allocation → integer ≥ 0 added to the limit, or null for unlimited (default);
    credits → integer ≥ 1 (required), granted as a lot."""
    kind = feature.type
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == Feature.Type.BOOLEAN:
        if not given:
            return True
        if not isinstance(value, bool):
            raise InvalidRequest(
                "value: a boolean feature takes true or false.", code="invalid_parameter", param="value"
            )
        return value
    if kind == Feature.Type.STATIC:
        if not given:
            raise InvalidRequest(
                "value: a static feature needs a value.", code="parameter_missing", param="value"
            )
        return value
    if kind == Feature.Type.CREDITS:
        if not is_int or value < 1:
            raise InvalidRequest(
                "value: a credits grant is an integer number of credits ≥ 1.",
                code="parameter_missing" if not given else "invalid_parameter",
                param="value",
            )
        return value
    if value is None:
        return None
    if not is_int or value < 0:
        raise InvalidRequest(
            f"value: {with_article(kind)} grant is an integer ≥ 0 added to the limit, or null for unlimited.",
            code="invalid_parameter",
            param="value",
        )
    return value


def grant_create(
    *,
    project: Project,
    actor: Actor,
    external_id: str,
    feature: Feature,
    reason: str,
    value: Any = None,
    value_given: bool = False,
    expires_at: datetime | None = None,
    priority: int | None = None,
    entity: str | None = None,
) -> Grant:
    """Grants a feature to a customer (a top-up on metered, credits and allocation; sets boolean/static).
    `priority` (credits only): the credits granted are spent before lots of a higher number (the others have
    `DEFAULT_CREDIT_PRIORITY`), lots of one priority oldest-expiring first. `entity` (credits only): the credits
    are that entity's own (a live entity of the customer, of the allocation feature whose entities the plan lets
    hold credits: `entity_credits`), spent only by uses naming it, before the account's."""
    value = grant_value_parse(feature=feature, value=value, given=value_given)
    for name, given in (("priority", priority), ("entity", entity)):
        if given is not None and feature.type != Feature.Type.CREDITS:
            raise InvalidRequest(
                f"{name}: only credits grants have {'a drawdown priority' if name == 'priority' else 'an entity'}; "
                f"{feature.key!r} is {with_article(feature.type)} feature.",
                code="invalid_parameter",
                param=name,
            )
    structure = ent_cache.structure_fresh(project=project, external_id=external_id) if entity else None
    _future(project, external_id, expires_at)
    customer = _customer_for(project, external_id)
    with transaction.atomic():
        if entity is not None and structure is not None:
            # Its row locked: a removal racing the grant waits and then ends this lot with the entity's others.
            entity_for_use(
                customer_id=structure["customer_id"],
                feature_key=feature.key,
                entry=structure["features"][feature.key],
                entity_id=entity,
                lock=True,
            )
        grant = Grant.objects.create(
            project=project,
            customer=customer,
            feature=feature,
            value=value,
            priority=priority,
            entity=entity or "",
            expires_at=expires_at,
            reason=reason,
        )
        if feature.type == Feature.Type.CREDITS:
            lot_create(
                customer=customer,
                feature=feature,
                amount=value,
                expires_at=expires_at,
                grant=grant,
                reference=grant.pk,
                priority=DEFAULT_CREDIT_PRIORITY if priority is None else priority,
                entity=entity or "",
            )
        audit_record(
            actor=actor,
            action="entitlement_grant.created",
            target=grant,
            project=project,
            reason=reason,
            after=_grant_audit(grant),
        )
        entitlements_recompute(customer=customer)
    return grant


def _grant_audit(grant: Grant) -> dict[str, Any]:
    return {
        "customer": grant.customer.external_id,
        "feature": grant.feature.key,
        "value": grant.value,
        **({"priority": grant.priority} if grant.priority is not None else {}),
        **({"entity": grant.entity} if grant.entity else {}),
        "expires_at": api_time(grant.expires_at),
    }


def grant_delete(*, grant: Grant, actor: Actor, reason: str = "") -> Grant:
    """Ends a grant now; the unspent credits of a credits grant are taken back. Idempotent."""
    with transaction.atomic():
        now = timezone.now()
        if not Grant.objects.filter(pk=grant.pk, deleted_at__isnull=True).update(deleted_at=now):
            return Grant.objects.get(pk=grant.pk)
        locked = Grant.objects.select_related("customer", "feature", "project").get(pk=grant.pk)
        lots_take_back(CreditLot.objects.filter(grant=locked), now=now, reference=locked.pk)
        audit_record(
            actor=actor,
            action="entitlement_grant.deleted",
            target=locked,
            project=locked.project,
            reason=reason,
            before=_grant_audit(locked),
            after={"deleted_at": api_time(now)},
        )
        entitlements_recompute(customer=locked.customer)
    return locked


def revocation_create(
    *,
    project: Project,
    actor: Actor,
    external_id: str,
    feature: Feature,
    reason: str,
    expires_at: datetime | None = None,
) -> Revocation:
    """Takes a feature away from a customer, whatever grants the customer it, until it expires or is deleted."""
    _future(project, external_id, expires_at)
    customer = _customer_for(project, external_id)
    with transaction.atomic():
        revocation = Revocation.objects.create(
            project=project, customer=customer, feature=feature, expires_at=expires_at, reason=reason
        )
        audit_record(
            actor=actor,
            action="entitlement_revocation.created",
            target=revocation,
            project=project,
            reason=reason,
            after={
                "customer": external_id,
                "feature": feature.key,
                "expires_at": api_time(expires_at),
            },
        )
        entitlements_recompute(customer=customer)
    return revocation


def revocation_delete(*, revocation: Revocation, actor: Actor, reason: str = "") -> Revocation:
    with transaction.atomic():
        now = timezone.now()
        if not Revocation.objects.filter(pk=revocation.pk, deleted_at__isnull=True).update(deleted_at=now):
            return Revocation.objects.get(pk=revocation.pk)
        locked = Revocation.objects.select_related("customer", "feature", "project").get(pk=revocation.pk)
        audit_record(
            actor=actor,
            action="entitlement_revocation.deleted",
            target=locked,
            project=locked.project,
            reason=reason,
            before={"customer": locked.customer.external_id, "feature": locked.feature.key},
            after={"deleted_at": api_time(now)},
        )
        entitlements_recompute(customer=locked.customer)
    return locked
