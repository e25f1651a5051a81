"""Customers' entities (their seats, workspaces: the tenant's ids) and each entity's use per period. Read-only
here; an operator removes an entity with a reason (its unit of the allocation feature given back, audited), as
`DELETE /entitlements/entities/{id}` does."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from core.actors import Actor
from core.admin_actions import reason_action
from core.admin_display import NEWEST_FIRST, column
from entitlements.admin.records import EntitlementPermissions, _ReadOnly
from entitlements.models import Entity, EntityCounter
from entitlements.services.entities import entity_remove


def _entity_remove(entity: Entity, data: dict[str, Any], actor: Actor) -> str | None:
    entity_remove(project=entity.project, pk=entity.pk, actor=actor, reason=data["reason"])
    return None


@admin.register(Entity)
class EntityAdmin(EntitlementPermissions, _ReadOnly):
    """Customers' entities, added and renamed through the API."""

    ordering = NEWEST_FIRST
    list_display = [
        column("id", "ID"),
        "project",
        "customer",
        column("feature", "Counted by"),
        column("external_id", "Entity"),
        "name",
        column("created_at", "Added"),
        column("removed_at", "Removed"),
    ]
    list_filter = ["project"]
    search_fields = ["id", "customer__external_id", "external_id", "name"]
    list_select_related = ["project", "customer", "feature"]
    actions = ["remove"]

    @admin.action(description="Remove the entity (its seat given back)", permissions=["revoke_entitlement"])
    def remove(self, request: HttpRequest, queryset: QuerySet[Entity]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Remove entities", perform=_entity_remove)


@admin.register(EntityCounter)
class EntityCounterAdmin(EntitlementPermissions, _ReadOnly):
    """Each entity's use of a metered feature with a limit per entity, per period."""

    ordering = ["-updated_at", "entity"]
    list_display = [
        "project",
        "customer",
        column("entity", "Entity"),
        "feature",
        column("period_start", "Period from"),
        "used",
        column("updated_at", "Updated"),
    ]
    list_filter = ["project"]
    search_fields = ["customer__external_id", "entity", "feature__key"]
    list_select_related = ["project", "customer", "feature"]
