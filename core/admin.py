"""The audit log in the back office: read-only, searchable by target, actor and request id."""

from django.contrib import admin
from django.http import HttpRequest

from core.models import AuditLogEntry


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "project", "actor_repr", "action", "target_type", "target_id", "reason"]
    list_filter = ["action", "actor_type", "project", "created_at"]
    search_fields = ["target_id", "actor_repr", "reason", "request_id"]
    list_select_related = ["project"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: AuditLogEntry | None = None) -> list[str]:
        return [field.name for field in AuditLogEntry._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditLogEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditLogEntry | None = None) -> bool:
        return False
