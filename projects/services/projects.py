"""Projects created and changed. Each write runs in its own transaction and records an audit row in it."""

from typing import Any

from django.db import IntegrityError, transaction

from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidRequest
from projects.authentication import auth_cache_invalidate
from projects.models import ApiKey, Project
from projects.services.keys import api_key_add
from projects.versions import project_version_bump

# Fields whose values never reach the audit log: only whether they are set.
_SECRET_FIELDS = ("stripe_secret_key", "stripe_webhook_secret")
UPDATABLE_FIELDS = (
    "name",
    "status",
    "default_currency",
    "allowed_redirect_hosts",
    "payment_ttl_seconds",
    "default_flow",
    "default_product",
    "stripe_secret_key",
    "stripe_publishable_key",
    "stripe_webhook_secret",
    "refund_late_payments",
    "first_invoice_void_ends_subscription",
    "proration_upgrade",
    "proration_downgrade",
    "proration_interval_change",
    "margin_alert_below_bps",
)


def _snapshot(project: Project) -> dict[str, Any]:
    data: dict[str, Any] = {"slug": project.slug}
    for field in UPDATABLE_FIELDS:
        value = getattr(project, field)
        data[field] = ("set" if value else "") if field in _SECRET_FIELDS else value
    return data


def _invalidate_project_keys_on_commit(project: Project) -> None:
    hashes = list(ApiKey.objects.filter(project=project).values_list("key_hash", flat=True))
    transaction.on_commit(lambda: auth_cache_invalidate(hashes))


def project_create(
    *,
    actor: Actor,
    slug: str,
    name: str,
    default_currency: str = "usd",
    allowed_redirect_hosts: list[str] | None = None,
    payment_ttl_seconds: int | None = None,
    default_flow: str = Project.Flow.CHECKOUT,
    default_product: str = "",
    stripe_secret_key: str = "",
    stripe_publishable_key: str = "",
    stripe_webhook_secret: str = "",
    refund_late_payments: bool | None = None,
    first_invoice_void_ends_subscription: bool = False,
    proration_upgrade: str = Project.ProrationRule.NOW_PRORATE,
    proration_downgrade: str = Project.ProrationRule.NOW_PRORATE,
    proration_interval_change: str = Project.ProrationRule.NOW_PRORATE,
    margin_alert_below_bps: int | None = None,
) -> tuple[Project, ApiKey, str]:
    """Creates a project and its first API key; returns the key's secret, which is never shown again."""
    project = Project(
        slug=slug,
        name=name,
        default_currency=default_currency.lower(),
        allowed_redirect_hosts=list(allowed_redirect_hosts or []),
        default_flow=default_flow,
        default_product=default_product,
        stripe_secret_key=stripe_secret_key,
        stripe_publishable_key=stripe_publishable_key,
        stripe_webhook_secret=stripe_webhook_secret,
        first_invoice_void_ends_subscription=first_invoice_void_ends_subscription,
        proration_upgrade=proration_upgrade,
        proration_downgrade=proration_downgrade,
        proration_interval_change=proration_interval_change,
        margin_alert_below_bps=margin_alert_below_bps,
    )
    if payment_ttl_seconds is not None:
        project.payment_ttl_seconds = payment_ttl_seconds
    if refund_late_payments is not None:
        project.refund_late_payments = refund_late_payments
    try:
        with transaction.atomic():
            project.save(force_insert=True)
            audit_record(
                actor=actor,
                action="project.created",
                target=project,
                project=project,
                after=_snapshot(project),
            )
            api_key, secret = api_key_add(actor=actor, project=project, name="default")
    except IntegrityError as exc:
        if Project.objects.filter(slug=slug).exists():
            raise Conflict(
                f"A project with slug {slug!r} already exists.", code="slug_taken", param="slug"
            ) from exc
        raise
    return project, api_key, secret


def project_update(*, actor: Actor, project: Project, reason: str = "", **changes: Any) -> Project:
    """Changes a project's settings (slug is immutable). Suspension takes effect on every process within a second."""
    if "slug" in changes and changes.pop("slug") != project.slug:
        raise InvalidRequest("slug cannot be changed.", code="immutable_field", param="slug")
    unknown = set(changes) - set(UPDATABLE_FIELDS)
    if unknown:
        raise InvalidRequest(f"Unknown fields: {', '.join(sorted(unknown))}.", param=sorted(unknown)[0])
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        before = _snapshot(locked)
        for field, value in changes.items():
            if field == "default_currency":
                value = value.lower()
            setattr(locked, field, value)
        locked.save()
        after = _snapshot(locked)
        if before != after:
            action = "project.updated"
            if before["status"] != after["status"]:
                action = (
                    "project.suspended"
                    if locked.status == Project.Status.SUSPENDED
                    else "project.reactivated"
                )
            audit_record(
                actor=actor,
                action=action,
                target=locked,
                project=locked,
                reason=reason,
                before=before,
                after=after,
            )
            _invalidate_project_keys_on_commit(locked)
            # The status too: the public plans page (cached under the project's catalog version) must 404 at once.
            if before["default_product"] != after["default_product"] or before["status"] != after["status"]:
                project_version_bump(project_id=locked.pk)
    return locked
