"""Projects and keys in the back office. Keys are never editable: their secrets are not stored."""

from django.contrib import admin

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
    list_display = ["slug", "name", "status", "default_currency", "default_flow", "created_at"]
    list_filter = ["status", "default_flow", "default_currency"]
    search_fields = ["slug", "name", "id"]
    readonly_fields = ["id", "slug", "status", "created_at", "updated_at"]
    exclude = ["stripe_secret_key", "stripe_webhook_secret"]
    inlines = [ApiKeyInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "project", "name", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["project", "revoked_at"]
    search_fields = ["prefix", "id", "project__slug"]
    list_select_related = ["project"]
    readonly_fields = ["id", "project", "prefix", "created_at", "last_used_at", "revoked_at"]
    exclude = ["key_hash"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False


@admin.register(PlatformKey)
class PlatformKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["prefix", "id", "name"]
    readonly_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]
    exclude = ["key_hash"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
