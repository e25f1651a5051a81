"""Projects and keys in the back office. Keys are never editable: their secrets are not stored."""

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from billing.reconciliation import reconcile
from core.actors import Actor
from core.admin_actions import has_perm, reason_action
from core.admin_display import column, status_column
from projects import services
from projects.models import ApiKey, PlatformKey, Project


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = [
        "slug",
        "name",
        status_column(),
        column("default_currency", "Currency"),
        column("default_flow", "Payment flow"),
        column("created_at", "Created"),
    ]
    list_filter = ["status", "default_flow", "default_currency"]
    search_fields = ["slug", "name", "id"]
    readonly_fields = ["id", "slug", "status", "created_at", "updated_at"]
    exclude = ["stripe_secret_key", "stripe_webhook_secret"]
    inlines = [ApiKeyInline]
    actions = ["suspend", "reactivate", "reconcile"]

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # it would take every customer, payment and subscription with it: suspend it instead

    @admin.action(description="Suspend (its keys stop working within a second)", permissions=["suspend"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Project]) -> TemplateResponse | None:
        return reason_action(
            self, request, queryset, title="Suspend projects", perform=_set_status(Project.Status.SUSPENDED)
        )

    @admin.action(description="Reactivate", permissions=["suspend"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Project]) -> TemplateResponse | None:
        return reason_action(
            self, request, queryset, title="Reactivate projects", perform=_set_status(Project.Status.ACTIVE)
        )

    @admin.action(description="Re-run reconciliation with Stripe (and fix)", permissions=["reconcile"])
    def reconcile(self, request: HttpRequest, queryset: QuerySet[Project]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Reconcile with Stripe", perform=_reconcile)

    def has_suspend_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "projects.suspend_project")

    def has_reconcile_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "billing.run_reconciliation")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "prefix",
        "project",
        "name",
        column("created_at", "Created"),
        column("last_used_at", "Last used"),
        column("revoked_at", "Revoked"),
    ]
    list_filter = ["project", "revoked_at"]
    search_fields = ["prefix", "id", "project__slug"]
    list_select_related = ["project"]
    readonly_fields = ["id", "project", "prefix", "created_at", "last_used_at", "revoked_at"]
    exclude = ["key_hash"]
    actions = ["rotate", "revoke"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # a key is revoked (audited), never deleted

    @admin.action(
        description="Rotate (a new key is shown once; this one is revoked)", permissions=["manage_keys"]
    )
    def rotate(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Rotate API keys", perform=_rotate)

    @admin.action(description="Revoke", permissions=["manage_keys"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Revoke API keys", perform=_revoke)

    def has_manage_keys_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "projects.manage_project_keys")


def _set_status(status: str) -> Callable[[Project, dict[str, Any], Actor], str]:
    def perform(project: Project, data: dict[str, Any], actor: Actor) -> str:
        updated = services.project_update(actor=actor, project=project, reason=data["reason"], status=status)
        return f"now {updated.status}"

    return perform


def _reconcile(project: Project, data: dict[str, Any], actor: Actor) -> str:
    run = reconcile(project=project, fix=True, actor=actor, reason=data["reason"])
    return f"{run.status}: {run.checked} checked, {run.drift_count} drift, {run.fixed_count} fixed"


def _rotate(api_key: ApiKey, data: dict[str, Any], actor: Actor) -> str:
    new_key, secret = services.api_key_create(
        actor=actor, project=api_key.project, name=f"rotated from {api_key.prefix}"
    )
    services.api_key_revoke(actor=actor, api_key=api_key, reason=data["reason"])
    # Shown once, to this operator only: the secret is not stored.
    return f"new key {new_key.prefix}… — copy it now, it will not be shown again: {secret}"


def _revoke(api_key: ApiKey, data: dict[str, Any], actor: Actor) -> None:
    services.api_key_revoke(actor=actor, api_key=api_key, reason=data["reason"])


@admin.register(PlatformKey)
class PlatformKeyAdmin(admin.ModelAdmin):
    list_display = [
        "prefix",
        "name",
        column("created_at", "Created"),
        column("last_used_at", "Last used"),
        column("revoked_at", "Revoked"),
    ]
    search_fields = ["prefix", "id", "name"]
    readonly_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]
    exclude = ["key_hash"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
