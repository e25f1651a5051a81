"""Credits in the back office: lots, their ledger, and the plan credits scheduled to come (a plan granting its
credits every month or week of a paid period). Read-only: lots and slices change only through the services."""

from django.contrib import admin

from core.admin_display import NEWEST_FIRST, column, status_badge
from core.admin_lists import LargeListAdmin
from entitlements.admin.records import _ReadOnly
from entitlements.models import CreditLedgerEntry, CreditLot, PlanCreditSlice


@admin.register(CreditLot)
class CreditLotAdmin(LargeListAdmin, _ReadOnly):
    ordering = NEWEST_FIRST
    list_display = [
        column("id", "ID"),
        "project",
        "customer",
        "feature",
        "source",
        column("entity", "Entity"),
        column("amount", "Credits"),
        "remaining",
        column("expires_at", "Expires"),
    ]
    list_filter = ["project", "source"]
    search_fields = ["id", "customer__external_id", "entity"]
    list_select_related = ["project", "customer", "feature"]


@admin.register(CreditLedgerEntry)
class CreditLedgerEntryAdmin(LargeListAdmin, _ReadOnly):
    ordering = NEWEST_FIRST
    list_display = [
        column("id", "ID"),
        "project",
        "customer",
        "feature",
        "type",
        column("amount", "Credits"),
        "reference",
        column("created_at", "When"),
    ]
    list_filter = ["project", "type"]
    search_fields = ["id", "customer__external_id", "reference"]
    list_select_related = ["project", "customer", "feature"]


@admin.register(PlanCreditSlice)
class PlanCreditSliceAdmin(LargeListAdmin, _ReadOnly):
    """Each month or week of a paid period's credits: when it is granted (or was), or that it stopped (the
    detail page says why and links the lot)."""

    ordering = ["-starts_at", "-pk"]
    list_display = [
        column("id", "ID"),
        "customer",
        "feature",
        column("amount", "Credits"),
        column("starts_at", "Granted from"),
        column("ends_at", "Expires"),
        "state",
    ]
    list_filter = ["project"]
    search_fields = ["id", "customer__external_id", "plan_period__invoice_id"]
    list_select_related = ["customer", "feature"]

    @admin.display(description="State")
    def state(self, obj: PlanCreditSlice) -> str:
        if obj.stopped_at is not None:
            return status_badge("stopped", "Stopped")
        if obj.granted_at is not None:
            return status_badge("granted", "Granted")
        return status_badge("pending", "Pending")
