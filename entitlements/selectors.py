"""Reads of entitlements for the API, admin and other apps. Every selector takes the project.

`entitlement_check` and `entitlements_list` answer from the cached snapshot (`entitlements.cache`): no SQL
when warm. A customer the project has never seen gets the default product's answer.
"""

from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from prometheus_client import Counter

from catalog.models import Feature
from core.errors import NotFound
from customers.models import Customer
from entitlements.cache import Snapshot, snapshot_get
from entitlements.models import CreditLedgerEntry, CreditLot, EntitlementSettings, Grant, Revocation
from entitlements.resolver import iso_epoch, settings_for
from entitlements.snapshot import FeatureEntry, StructureSnapshot, UsageCounts
from projects.models import Project


def feature_answer(key: str, entry: FeatureEntry, usage: UsageCounts, quantity: int = 1) -> dict[str, Any]:
    """One feature's answer: `{allowed, feature, type, enabled, value, limit, used, remaining, balance, …}`."""
    kind = entry["type"]
    enabled = entry["enabled"]
    limit = entry["limit"]
    used: int | None = None
    remaining: int | None = None
    balance: int | None = None
    resets_at = None
    if kind == Feature.Type.METERED or kind == Feature.Type.ALLOCATION:
        used = (usage["used"] if kind == Feature.Type.METERED else usage["in_use"]).get(key, 0)
        remaining = None if limit is None else max(limit - used, 0)
        allowed = enabled and (limit is None or used + quantity <= limit)
        if kind == Feature.Type.METERED:
            resets_at = iso_epoch(entry["period_end"])
    elif kind == Feature.Type.CREDITS:
        balance = usage["balance"].get(key, 0)
        remaining = balance
        enabled = not entry["revoked"] and balance > 0
        allowed = not entry["revoked"] and balance >= max(quantity, 1)
    else:
        allowed = enabled
    return {
        "allowed": allowed,
        "feature": key,
        "type": kind,
        "enabled": enabled,
        "value": entry["value"],
        "limit": limit,
        "used": used,
        "remaining": remaining,
        "balance": balance,
        "resets_at": resets_at,
        "sources": entry["sources"],
    }


def snapshot_entry(snapshot: Snapshot, feature_key: str, *, param: str = "feature") -> FeatureEntry:
    entry = snapshot.structure["features"].get(feature_key)
    if entry is None:
        raise NotFound(f"No such feature: {feature_key!r}.", param=param)
    return entry.copy()  # a shallow copy, as dict(entry) was: the caller may add to it


# Counted in process (django-prometheus' registry; set PROMETHEUS_MULTIPROC_DIR to sum gunicorn's workers): the
# hit ratio is hit / (hit + miss).
CHECKS = Counter(
    "tollgate_entitlement_checks",
    "Entitlement checks, by whether the answer came from the cached snapshot without SQL.",
    ["cache"],
)


def entitlement_check(
    *,
    project: Project,
    external_id: str,
    feature_key: str,
    quantity: int = 1,
    read_ahead: dict[str, Any] | None = None,
) -> dict[str, Any]:
    snapshot = snapshot_get(project=project, external_id=external_id, read_ahead=read_ahead)
    CHECKS.labels(cache="hit" if snapshot.cached else "miss").inc()
    entry = snapshot_entry(snapshot, feature_key)
    answer = feature_answer(feature_key, entry, snapshot.usage, quantity)
    del answer["sources"], answer["resets_at"]
    return answer


def entitlements_list(*, project: Project, external_id: str) -> dict[str, Any]:
    snapshot = snapshot_get(project=project, external_id=external_id)
    return entitlements_body(external_id, snapshot.structure, snapshot.usage)


def entitlements_body(external_id: str, structure: StructureSnapshot, usage: UsageCounts) -> dict[str, Any]:
    rows = []
    for key, entry in structure["features"].items():
        answer = feature_answer(key, entry, usage)
        del answer["allowed"]
        rows.append(answer)
    return {"customer": external_id, "entitlements": rows}


def customer_find(*, project: Project, external_id: str) -> Customer | None:
    return Customer.objects.filter(project=project, external_id=external_id).first()


def feature_get(*, project: Project, key: str, param: str = "feature") -> Feature:
    feature = Feature.objects.filter(project=project, key=key).first()
    if feature is None:
        raise NotFound(f"No such feature: {key!r}.", param=param)
    return feature


def grant_get(*, project: Project, grant_id: str) -> Grant:
    grant = (
        Grant.objects.filter(project=project, pk=grant_id, deleted_at__isnull=True)
        .select_related("customer", "feature", "project")
        .first()
    )
    if grant is None:
        raise NotFound(f"No such grant: {grant_id!r}.")
    return grant


def revocation_get(*, project: Project, revocation_id: str) -> Revocation:
    revocation = (
        Revocation.objects.filter(project=project, pk=revocation_id, deleted_at__isnull=True)
        .select_related("customer", "feature", "project")
        .first()
    )
    if revocation is None:
        raise NotFound(f"No such revocation: {revocation_id!r}.")
    return revocation


def credit_lots(*, project: Project, customer: Customer, feature: Feature) -> QuerySet[CreditLot]:
    return CreditLot.objects.filter(project=project, customer=customer, feature=feature).order_by(
        "created_at"
    )


def credit_balance(*, project: Project, customer: Customer, feature: Feature) -> int:
    now = timezone.now()
    return sum(
        CreditLot.objects.filter(project=project, customer=customer, feature=feature, voided_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .values_list("remaining", flat=True)
    )


def credit_ledger(
    *, project: Project, customer: Customer, feature: Feature, limit: int = 100
) -> list[CreditLedgerEntry]:
    return list(
        CreditLedgerEntry.objects.filter(project=project, customer=customer, feature=feature).order_by(
            "-created_at", "-pk"
        )[:limit]
    )


def entitlement_settings_get(*, project: Project) -> EntitlementSettings:
    """The project's entitlement settings (the defaults when it never changed them)."""
    return settings_for(project)
