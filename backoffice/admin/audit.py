"""The audit log in the back office: read-only, searchable by action, target, actor and request id, filtered by
project (the entry holds the project's id as a value: core sits below projects)."""

from typing import Any

from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from core.admin_display import column
from core.admin_generics import ModelAdmin
from core.admin_lists import LargeListAdmin
from core.models import AuditLogEntry
from projects.models import Project


class ProjectFilter(admin.SimpleListFilter):
    title = "project"
    parameter_name = "project_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(pk, slug) for pk, slug in Project.objects.order_by("slug").values_list("pk", "slug")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditLogEntry]) -> QuerySet[AuditLogEntry]:
        value = self.value()
        return queryset.filter(project_id=value) if value else queryset


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(LargeListAdmin, ModelAdmin[AuditLogEntry]):
    list_display = [
        column("created_at", "When"),
        "project",
        column("actor_repr", "Actor"),
        "action",
        column("target_type", "Target"),
        column("target_id", "Target ID"),
        "reason",
    ]
    # No filter on the action: its choices would be every row's action (`SELECT DISTINCT` over the log on each
    # page). Search finds them instead ("refund", "api_key.revoked").
    list_filter = ["actor_type", ProjectFilter, "created_at"]
    search_fields = ["action", "target_id", "actor_repr", "reason", "request_id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditLogEntry]:
        slug = Project.objects.filter(pk=OuterRef("project_id")).values("slug")[:1]
        return super().get_queryset(request).annotate(project_slug=Subquery(slug))

    @admin.display(description="Project", ordering="project_slug")
    def project(self, entry: AuditLogEntry) -> str:
        return getattr(entry, "project_slug", None) or "-"

    # Every field, the project shown by its slug where the entry holds its id.
    fields = readonly_fields = tuple(
        "project" if field.name == "project_id" else field.name for field in AuditLogEntry._meta.fields
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditLogEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditLogEntry | None = None) -> bool:
        return False
