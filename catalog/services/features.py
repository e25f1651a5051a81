"""Feature writes: create, and update (name and unit; the type only while no product or price uses the feature;
never the key). A metered feature's Stripe meter is `stripe_sync.feature_meter_ensure`."""

from typing import Any

from django.db import IntegrityError, transaction

from catalog.formulas import formula_parse
from catalog.models import Feature, Price, ProductFeature
from catalog.rules import UNSET
from catalog.selectors import feature_list
from catalog.snapshots import feature_snapshot
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidRequest
from projects.models import Project
from projects.versions import project_version_bump


def feature_in_use(feature: Feature) -> bool:
    return (
        ProductFeature.objects.filter(feature=feature).exists()
        or Price.objects.filter(meter=feature).exists()
    )


def _formula_check(feature_type: str, raw: Any) -> dict[str, Any] | None:
    """The usage formula normalized (`catalog.formulas`); only a metered feature's usage events have one."""
    formula = formula_parse(raw)
    if formula is not None and feature_type != Feature.Type.METERED:
        raise InvalidRequest(
            f"usage_formula: a {feature_type} feature has no usage events; only a metered feature takes a formula.",
            code="formula_not_metered",
            param="usage_formula",
        )
    return formula


def feature_create(
    *,
    project: Project,
    actor: Actor,
    key: str,
    name: str,
    type: str,
    unit: str | None = None,
    usage_formula: Any = None,
) -> Feature:
    formula = _formula_check(type, usage_formula)
    if feature_list(project=project).filter(key=key).exists():
        raise Conflict(f"A feature with key {key!r} already exists.", code="key_taken", param="key")
    feature = Feature(project=project, key=key, name=name, type=type, unit=unit or "", usage_formula=formula)
    try:
        with transaction.atomic():
            feature.save(force_insert=True)
            project_version_bump(project_id=project.pk)  # every answer lists every feature
            audit_record(
                actor=actor,
                action="feature.created",
                target=feature,
                project=project,
                after=feature_snapshot(feature),
            )
    except IntegrityError as exc:
        raise Conflict(f"A feature with key {key!r} already exists.", code="key_taken", param="key") from exc
    return feature


def feature_update(
    *,
    actor: Actor,
    feature: Feature,
    key: str | None = None,
    name: str | None = None,
    type: str | None = None,
    unit: str | None = UNSET,
    usage_formula: Any = UNSET,
) -> Feature:
    """Renames a feature or changes its unit or usage formula (for events recorded from then on); its type only
    while no product or price uses it. The key is fixed."""
    if key is not None and key != feature.key:
        raise InvalidRequest("key: a feature's key cannot be changed.", code="immutable_field", param="key")
    with transaction.atomic():
        locked = Feature.objects.select_for_update().get(pk=feature.pk)
        before = feature_snapshot(locked)
        if type is not None and type != locked.type:
            if feature_in_use(locked):
                raise Conflict(
                    "type: the feature is used by a product or price; its type can no longer change.",
                    code="feature_in_use",
                    param="type",
                )
            locked.type = type
        if name is not None:
            locked.name = name
        if unit is not UNSET:
            locked.unit = unit or ""
        if usage_formula is not UNSET:
            locked.usage_formula = usage_formula
        locked.usage_formula = _formula_check(locked.type, locked.usage_formula)
        after = feature_snapshot(locked)
        if after != before:
            locked.save()
            project_version_bump(project_id=locked.project.pk)
            audit_record(
                actor=actor,
                action="feature.updated",
                target=locked,
                project=locked.project,
                before=before,
                after=after,
            )
    return locked
