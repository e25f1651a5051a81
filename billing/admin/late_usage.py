"""Late usage charges in the back office, read-only: usage Stripe had invoiced the period of before it was reported,
billed on the customer's next invoice (`billing.services.late_usage`)."""

from django.contrib import admin

from billing.models import LateUsageCharge
from core.admin_columns import money_column, read_only_page
from core.admin_display import NEWEST_FIRST, ViewOnly, column
from core.admin_generics import ModelAdmin


@admin.register(LateUsageCharge)
class LateUsageChargeAdmin(ViewOnly, ModelAdmin[LateUsageCharge]):
    ordering = NEWEST_FIRST
    list_display = [
        column("event_id", "Event ID"),
        "project",
        "customer",
        "feature",
        column("period_end", "Invoiced period until"),
        column("quantity", "Units billed"),
        money_column("amount", "Amount"),
        "status",
        column("stripe_invoice_item", "Invoice item at Stripe"),
        column("created_at", "Charged"),
    ]
    list_filter = ["project", "status"]
    search_fields = ["event_id", "customer__external_id", "stripe_invoice_item"]
    list_select_related = ["project", "customer", "feature"]
    readonly_fields, exclude = read_only_page(LateUsageCharge, money=("amount",))
