"""Reconciliation runs and the drift they found, read-only (runs are started from the project page or
the `reconcile` command).
"""

from django.contrib import admin

from billing.models import Drift, ReconciliationRun
from core.admin_generics import ModelAdmin, TabularInline


class DriftInline(TabularInline[Drift, ReconciliationRun]):
    model = Drift
    extra = 0
    can_delete = False
    readonly_fields = [
        "project",
        "kind",
        "object_type",
        "stripe_id",
        "local_id",
        "field",
        "local_value",
        "stripe_value",
        "status",
        "detail",
    ]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ModelAdmin[ReconciliationRun]):
    list_display = [
        "id",
        "project",
        "status",
        "fix",
        "checked",
        "drift_count",
        "fixed_count",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status", "project", "fix"]
    list_select_related = ["project"]
    readonly_fields = [field.name for field in ReconciliationRun._meta.fields]
    inlines = [DriftInline]


@admin.register(Drift)
class DriftAdmin(ModelAdmin[Drift]):
    list_display = [
        "run",
        "project",
        "kind",
        "object_type",
        "stripe_id",
        "field",
        "local_value",
        "stripe_value",
        "status",
    ]
    list_filter = ["status", "kind", "object_type", "project"]
    search_fields = ["stripe_id", "local_id"]
    list_select_related = ["run", "project"]
    readonly_fields = [field.name for field in Drift._meta.fields]
