"""The project page's operator action that reaches into billing: re-run reconciliation with Stripe. The project
admin itself is `projects.admin`; this subclass replaces its registration so the action sits above billing."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from billing.services.reconcile import reconcile
from core.actors import Actor
from core.admin_actions import has_perm, reason_action
from projects import admin as projects_admin
from projects.models import Project


class ProjectAdmin(projects_admin.ProjectAdmin):
    actions = [*projects_admin.ProjectAdmin.actions, "reconcile"]

    @admin.action(description="Re-run reconciliation with Stripe (and fix)", permissions=["reconcile"])
    def reconcile(self, request: HttpRequest, queryset: QuerySet[Project]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Reconcile with Stripe", perform=_reconcile)

    def has_reconcile_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "billing.run_reconciliation")


def _reconcile(project: Project, data: dict[str, Any], actor: Actor) -> str:
    run = reconcile(project=project, fix=True, actor=actor, reason=data["reason"])
    return f"{run.status}: {run.checked} checked, {run.drift_count} drift, {run.fixed_count} fixed"


admin.site.unregister(Project)
admin.site.register(Project, ProjectAdmin)
