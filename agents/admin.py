"""Agent keys and the money moves agents asked for, in the back office. Keys are revoked by an action (their
secrets are not stored); a pending move is confirmed (made, once) or declined by an operator with
`agents.decide_moveconfirmation`, audited with the operator and the reason. Nothing here is edited by hand."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from agents.models import AgentKey, MoveConfirmation
from agents.services import moves
from agents.services.keys import agent_key_revoke
from core.actors import Actor
from core.admin_actions import has_perm, reason_action
from core.admin_display import NEWEST_FIRST, ViewOnly, column, status_column
from core.admin_generics import ModelAdmin


@admin.register(AgentKey)
class AgentKeyAdmin(ViewOnly, ModelAdmin[AgentKey]):
    ordering = NEWEST_FIRST
    list_display = [
        column("prefix", "Key"),
        "name",
        "project",
        column("can_confirm", "May confirm money moves", boolean=True),
        column("created_at", "Created"),
        column("last_used_at", "Last used"),
        column("revoked_at", "Revoked"),
    ]
    list_filter = ["project", "can_confirm"]
    search_fields = ["id", "prefix", "name"]
    list_select_related = ["project"]
    readonly_fields = [
        "id",
        "project",
        "name",
        "prefix",
        "tools",
        "can_confirm",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    exclude = ["key_hash"]
    actions = ["revoke"]

    @admin.action(description="Revoke", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[AgentKey]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Revoke agent keys", perform=_revoke)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "projects.manage_project_keys")


def _revoke(agent_key: AgentKey, data: dict[str, Any], actor: Actor) -> None:
    agent_key_revoke(actor=actor, agent_key=agent_key, reason=data["reason"])


@admin.register(MoveConfirmation)
class MoveConfirmationAdmin(ViewOnly, ModelAdmin[MoveConfirmation]):
    ordering = NEWEST_FIRST
    list_display = [
        column("id", "Confirmation"),
        "project",
        column("tool", "Move"),
        status_column(),
        column("agent_key", "Asked by"),
        column("expires_at", "Expires"),
        column("decided_by", "Decided by"),
        column("created_at", "Asked"),
    ]
    list_filter = ["project", "status", "tool"]
    search_fields = ["id", "agent_key__prefix"]
    list_select_related = ["project", "agent_key"]
    readonly_fields = [field.name for field in MoveConfirmation._meta.fields]
    actions = ["confirm", "decline"]

    @admin.action(description="Confirm (make the move)", permissions=["decide"])
    def confirm(self, request: HttpRequest, queryset: QuerySet[MoveConfirmation]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Confirm money moves", perform=_confirm)

    @admin.action(description="Decline", permissions=["decide"])
    def decline(self, request: HttpRequest, queryset: QuerySet[MoveConfirmation]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Decline money moves", perform=_decline)

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "agents.decide_moveconfirmation")


def _confirm(confirmation: MoveConfirmation, data: dict[str, Any], actor: Actor) -> str:
    answer = moves.move_confirm(
        project=confirmation.project, confirmation_id=confirmation.pk, actor=actor, reason=data["reason"]
    )
    result = answer["result"] or {}
    return f"made: {result.get('object', 'result')} {result.get('id', '')} is now {result.get('status', '')}."


def _decline(confirmation: MoveConfirmation, data: dict[str, Any], actor: Actor) -> None:
    moves.move_decline(confirmation=confirmation, actor=actor, reason=data["reason"])
