"""The back office's name and the audit log: read-only, searchable by target, actor and request id."""

from django.contrib import admin
from django.http import HttpRequest

from core.admin_display import column
from core.models import AuditLogEntry

# Set once for every admin page, the dashboard included (it renders with `admin.site.each_context`).
admin.site.site_header = "Tollgate back office"
admin.site.site_title = "Tollgate back office"
admin.site.index_title = "Back office"
# "View site" leads to the HTTP API's documentation: Tollgate has no public site of its own.
admin.site.site_url = "/api/docs/"
# The navigation sidebar takes a fifth of a 1366 px screen from every list; the home page and the breadcrumbs
# lead everywhere it does.
admin.site.enable_nav_sidebar = False


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(admin.ModelAdmin):
    list_display = [
        column("created_at", "When"),
        "project",
        column("actor_repr", "Actor"),
        "action",
        column("target_type", "Target"),
        column("target_id", "Target ID"),
        "reason",
    ]
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
