"""Usage events and their corrections in the back office: the events (read-only; an operator voids one with a
reason, as `POST /usage/corrections` does: `services.usage_corrections`) and every correction made, with how far
Stripe's meter is corrected."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from core.actors import Actor
from core.admin_actions import reason_action
from core.admin_display import NEWEST_FIRST, column
from core.admin_lists import LargeListAdmin
from entitlements.admin.records import EntitlementPermissions, _ReadOnly
from entitlements.models import UsageCorrection, UsageEvent
from entitlements.services.usage_corrections import usage_correct


def _event_void(event: UsageEvent, data: dict[str, Any], actor: Actor) -> str | None:
    correction, _ = usage_correct(
        project=event.project,
        actor=actor,
        correction_id=f"admin-void-{event.pk}",  # one void per event, however often the form is sent
        event_id=event.event_id,
        action=UsageCorrection.Action.VOID,
        quantity=None,
        reason=data["reason"],
    )
    return f"voided ({correction.quantity_before} units); Stripe's meter: {correction.meter}"


@admin.register(UsageEvent)
class UsageEventAdmin(EntitlementPermissions, LargeListAdmin, _ReadOnly):
    ordering = NEWEST_FIRST
    list_display = [
        column("event_id", "Event ID"),
        "project",
        "customer",
        "feature",
        "kind",
        "quantity",
        column("cost_micros", "Cost (micro-units)"),
        "timestamp",
        column("meter_status", "Stripe meter"),
        column("meter_reported_at", "Reported to Stripe"),
    ]
    list_filter = ["project", "kind", "meter_status"]
    search_fields = ["event_id", "customer__external_id"]
    list_select_related = ["project", "customer", "feature"]
    actions = ["void"]

    @admin.action(
        description="Void the usage event (and correct Stripe's meter)", permissions=["revoke_entitlement"]
    )
    def void(self, request: HttpRequest, queryset: QuerySet[UsageEvent]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Void usage events", perform=_event_void)


@admin.register(UsageCorrection)
class UsageCorrectionAdmin(_ReadOnly):
    """Corrections of usage events (`POST /usage/corrections` or the events' void action), each audited; and
    Tollgate's own `allowance` corrections: units of an event Stripe's meter held that allowance another
    correction freed pays now, added to the meter (their reason names that correction)."""

    ordering = NEWEST_FIRST
    list_display = [
        column("correction_id", "Correction ID"),
        "project",
        "customer",
        "feature",
        column("event_id", "Event ID"),
        "action",
        column("quantity_before", "Before"),
        column("quantity_after", "After"),
        column("meter", "Stripe meter"),
        "reason",
        column("created_at", "Corrected"),
    ]
    list_filter = ["project", "action", "meter"]
    search_fields = ["correction_id", "event_id", "customer__external_id"]
    list_select_related = ["project", "customer", "feature"]
