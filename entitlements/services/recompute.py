"""The recompute hook and a project's entitlement settings: `entitlements_recompute` announces
`entitlements.updated` when what a customer may use changed and invalidates the customer's cached answers on
commit, `projects.versions.project_version_bump` invalidates a whole project's, and `entitlement_settings_update` changes a
project's grace periods and `credits.low` mark (audited). `version_key` names the cache key every change bumps.
"""

import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from catalog.models import Feature
from core.actors import Actor
from core.audit import audit_record
from core.errors import InvalidRequest
from customers.models import Customer
from entitlements import cache as ent_cache
from entitlements import changes, resolver, statements, usage_read
from entitlements.models import EntitlementSettings, EntitlementState
from entitlements.selectors import entitlements_body
from entitlements.snapshot import FeatureEntry, StructureSnapshot
from events.services.record import event_record
from projects.models import Project
from projects.versions import project_version_bump


def version_key(customer: Customer) -> str:
    """The cache key of the customer's structure version (what every entitlement change bumps)."""
    return ent_cache.Keys.structure_version_of(customer.project_id, customer.external_id)


def _feature_shape(entry: FeatureEntry) -> list[Any]:
    """What the customer may use of one feature. A credits feature answers by its balance, so its value and limit
    never move: what changes is a source of credits appearing or ending (a grant, a purchase, a plan), so its
    sources are part of it (spending credits changes no source). Only credits features carry them, so the digests
    stored for the other features stay valid."""
    shape = [entry["type"], entry["enabled"], entry["value"], entry["limit"], entry["revoked"]]
    if entry["type"] == Feature.Type.CREDITS:
        shape.append(sorted((source["type"], source["id"]) for source in entry["sources"]))
    if entry.get("overage"):
        shape.append("overage")  # only when allowed: the digests stored before it existed stay valid
    return shape


def _answer_digest(structure: StructureSnapshot) -> str:
    """What the customer may use, without usage or timing: the part `entitlements.updated` announces."""
    shape = {key: _feature_shape(entry) for key, entry in structure["features"].items()}
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()


def entitlements_recompute(*, customer: Customer) -> None:
    """What `customer` may use has (possibly) changed: announce it if it did, and invalidate cached answers on
    commit. Runs in the caller's transaction, or in its own."""
    with transaction.atomic(savepoint=False):
        project = customer.project  # loaded with the customer on every hot path
        now = timezone.now()
        structure, anyone = resolver.resolve_structure_and_default(
            project=project, customer=customer, now=now
        )
        digest = _answer_digest(structure)
        if _state_put(customer, digest, lambda: _answer_digest(anyone())):
            usage = usage_read.resolve_usage(customer_id=customer.pk, structure=structure, now=now)
            event_record(
                project=project,
                type="entitlements.updated",
                data_object=entitlements_body(customer.external_id, structure, usage),
            )
        changes.structure_changed(project_id=customer.project_id, external_id=customer.external_id)


def _state_put(customer: Customer, digest: str, baseline: Callable[[], str]) -> bool:
    """Stores `digest` as the customer's last announced answer, under the state row's lock (concurrent recomputes
    of a customer decide one after the other), and returns whether it differs from the one stored. A customer
    seen for the first time starts from `baseline`, what anyone gets without a customer record (the project's
    default product), so a customer whose first recompute changes nothing announces nothing."""
    states = EntitlementState.objects.filter(customer_id=customer.pk)
    stored = statements.STATE.first(customer_id=customer.pk)  # under the row's lock: SELECT … FOR UPDATE
    if stored is None:
        if _state_insert(customer.pk, digest):
            return digest != baseline()
        stored = states.values_list("digest", flat=True).get()  # inserted meanwhile by a concurrent recompute
    if stored == digest:
        return False
    states.update(digest=digest, updated_at=timezone.now())
    return True


def _state_insert(customer_id: str, digest: str) -> bool:
    """Inserts the customer's state row; False when it exists already (one statement on both backends)."""
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO "entitlements_entitlementstate" ("customer_id", "digest", "updated_at") '
            "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [customer_id, digest, connection.ops.adapt_datetimefield_value(timezone.now())],
        )
        return bool(cursor.rowcount == 1)


SETTINGS_FIELDS = ("past_due_grace_seconds", "usage_grace_seconds", "credits_low_percent")


def entitlement_settings_update(
    *, project: Project, actor: Actor, reason: str = "", **changes: int
) -> EntitlementSettings:
    """Changes a project's entitlement settings (grace periods, the `credits.low` mark), audited; every cached
    answer of the project is recomputed with them."""
    unknown = sorted(set(changes) - set(SETTINGS_FIELDS))
    if unknown:
        raise InvalidRequest(f"{unknown[0]}: Unknown parameter.", code="unknown_parameter", param=unknown[0])
    with transaction.atomic():
        EntitlementSettings.objects.get_or_create(project=project)
        locked = EntitlementSettings.objects.select_for_update().get(project=project)
        before = {name: getattr(locked, name) for name in SETTINGS_FIELDS}
        for name, value in changes.items():
            setattr(locked, name, value)
        after = {name: getattr(locked, name) for name in SETTINGS_FIELDS}
        if after != before:
            locked.save()
            audit_record(
                actor=actor,
                action="entitlement_settings.updated",
                target=locked,
                project=project,
                reason=reason,
                before=before,
                after=after,
            )
            project_version_bump(project_id=project.pk)
    return locked
