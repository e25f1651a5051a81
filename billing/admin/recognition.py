"""Revenue schedules in the back office: what each paid line earns over its service, read-only (they are written
from the mirror, `billing.services.recognition`)."""

from django.contrib import admin
from django.utils import timezone

from billing.models import RevenueSchedule
from core.admin_columns import money_column, read_only_page
from core.admin_display import ViewOnly, column
from core.admin_generics import ModelAdmin
from core.money import money_format


@admin.register(RevenueSchedule)
class RevenueScheduleAdmin(ViewOnly, ModelAdmin[RevenueSchedule]):
    ordering = ("-created_at", "-pk")
    list_display = [
        column("document", "Invoice, payment or reversal"),
        "project",
        "kind_in_words",
        "product",
        money_column("amount", "Amount"),
        column("start_day", "Service from"),
        column("end_day", "Service until"),
        column("booked_on", "Booked on"),
        "recognised_today",
        column("created_at", "Written"),
    ]
    list_filter = ["project", "kind", "currency"]
    search_fields = ["key", "document", "description", "credit_purchase"]
    list_select_related = ["project", "product"]
    readonly_fields, exclude = read_only_page(
        RevenueSchedule,
        money=("amount", "immediate"),
        labels={"immediate": "Recognised at once (of a reversal)", "key": "Line"},
    )

    @admin.display(description="Kind", ordering="kind")
    def kind_in_words(self, schedule: RevenueSchedule) -> str:
        return str(RevenueSchedule.Kind(schedule.kind).label)

    @admin.display(description="Recognised by today")
    def recognised_today(self, schedule: RevenueSchedule) -> str:
        if schedule.credit_purchase:
            return "as the credits are spent"
        return money_format(schedule.recognised_by(timezone.now().date()), schedule.currency)
