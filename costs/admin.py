"""Cost tables in the back office: read only. A version is written through the API's service alone
(`costs.services.cost_tables`, audited) and never changed or deleted."""

from django.contrib import admin

from core.admin_display import NEWEST_FIRST, ViewOnly, column
from core.admin_generics import ModelAdmin
from costs.models import CostTable


@admin.register(CostTable)
class CostTableAdmin(ViewOnly, ModelAdmin[CostTable]):
    ordering = NEWEST_FIRST
    list_display = [
        column("id", "ID"),
        "project",
        "version",
        "currency",
        column("starts_at", "Starts"),
        "models_count",
        column("created_at", "Created"),
    ]
    list_filter = ["project"]
    search_fields = ["id"]
    list_select_related = ["project"]
    readonly_fields = ["id", "project", "version", "currency", "starts_at", "models", "created_at"]

    @admin.display(description="Models")
    def models_count(self, table: CostTable) -> int:
        """How many models (or other cost dimensions) the version prices."""
        return len(table.models)
