"""The entitlements back office: grants, revocations, purchases, usage (with its Stripe meter status), credits.

Rows are read-only here; changes go through the services (the same ones the API calls), each audited with the
operator and a reason. #7 builds richer screens on these services.
"""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from core.actors import Actor
from core.admin_actions import reason_action
from entitlements import services
from entitlements.models import (
    CreditLedgerEntry,
    CreditLot,
    EntitlementSettings,
    Grant,
    ProductAccess,
    Purchase,
    Revocation,
    UsageEvent,
)


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]


def _grant_delete(grant: Grant, data: dict[str, Any], actor: Actor) -> str | None:
    if grant.deleted_at is not None:
        return "already ended"
    services.grant_delete(grant=grant, actor=actor, reason=data["reason"])
    return None


def _revocation_delete(revocation: Revocation, data: dict[str, Any], actor: Actor) -> str | None:
    if revocation.deleted_at is not None:
        return "already lifted"
    services.revocation_delete(revocation=revocation, actor=actor, reason=data["reason"])
    return None


def _purchase_revoke(purchase: Purchase, data: dict[str, Any], actor: Actor) -> str | None:
    services.purchase_revoke(payment=purchase.payment, reason=data["reason"])
    return None


@admin.register(Grant)
class GrantAdmin(_ReadOnly):
    list_display = ["id", "project", "customer", "feature", "value", "expires_at", "deleted_at", "created_at"]
    list_filter = ["project"]
    search_fields = ["id", "customer__external_id", "feature__key", "reason"]
    list_select_related = ["project", "customer", "feature"]
    actions = ["end"]

    @admin.action(description="End the grant (takes back unspent credits)")
    def end(self, request: HttpRequest, queryset: QuerySet[Grant]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="End grants", perform=_grant_delete)


@admin.register(Revocation)
class RevocationAdmin(_ReadOnly):
    list_display = ["id", "project", "customer", "feature", "expires_at", "deleted_at", "created_at"]
    list_filter = ["project"]
    search_fields = ["id", "customer__external_id", "feature__key", "reason"]
    list_select_related = ["project", "customer", "feature"]
    actions = ["lift"]

    @admin.action(description="Lift the revocation")
    def lift(self, request: HttpRequest, queryset: QuerySet[Revocation]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Lift revocations", perform=_revocation_delete)


@admin.register(Purchase)
class PurchaseAdmin(_ReadOnly):
    list_display = ["id", "project", "customer", "product", "quantity", "starts_at", "ends_at", "revoked_at"]
    list_filter = ["project"]
    search_fields = ["id", "customer__external_id", "payment__id"]
    list_select_related = ["project", "customer", "product"]
    actions = ["revoke"]

    @admin.action(description="Revoke what the payment granted (e.g. after a partial refund)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Purchase]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Revoke purchases", perform=_purchase_revoke)


@admin.register(UsageEvent)
class UsageEventAdmin(_ReadOnly):
    list_display = [
        "event_id",
        "project",
        "customer",
        "feature",
        "kind",
        "quantity",
        "timestamp",
        "meter_status",
        "meter_reported_at",
    ]
    list_filter = ["project", "kind", "meter_status"]
    search_fields = ["event_id", "customer__external_id"]
    list_select_related = ["project", "customer", "feature"]


@admin.register(CreditLot)
class CreditLotAdmin(_ReadOnly):
    list_display = ["id", "project", "customer", "feature", "source", "amount", "remaining", "expires_at"]
    list_filter = ["project", "source"]
    search_fields = ["id", "customer__external_id"]
    list_select_related = ["project", "customer", "feature"]


@admin.register(CreditLedgerEntry)
class CreditLedgerEntryAdmin(_ReadOnly):
    list_display = ["id", "project", "customer", "feature", "type", "amount", "reference", "created_at"]
    list_filter = ["project", "type"]
    search_fields = ["id", "customer__external_id", "reference"]
    list_select_related = ["project", "customer", "feature"]


@admin.register(EntitlementSettings)
class EntitlementSettingsAdmin(admin.ModelAdmin):
    list_display = ["project", "past_due_grace_seconds", "usage_grace_seconds", "credits_low_percent"]
    list_select_related = ["project"]

    def save_model(self, request: HttpRequest, obj: EntitlementSettings, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.entitlements_project_changed(project=obj.project)  # cached answers carry the old settings


@admin.register(ProductAccess)
class ProductAccessAdmin(admin.ModelAdmin):
    list_display = ["product", "duration_days"]
    list_select_related = ["product"]
    raw_id_fields = ["product"]  # the duration applies to purchases recorded from now on
