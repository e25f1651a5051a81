"""The project page's operator actions that reach into billing: re-run reconciliation with Stripe, and adopt the
project's existing Stripe account. The project admin itself is `projects.admin`; this subclass replaces its
registration so the actions sit above billing."""

from typing import Any

import yaml
from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from billing.services.adoption import adoption_start
from billing.services.reconcile import reconcile
from core.actors import Actor
from core.admin_actions import ReasonForm, has_perm, reason_action
from projects import admin as projects_admin
from projects.models import Project


class ProjectAdmin(projects_admin.ProjectAdmin):
    actions = [*projects_admin.ProjectAdmin.actions, "reconcile", "adopt_stripe_account"]

    @admin.action(description="Re-run reconciliation with Stripe (and fix)", permissions=["reconcile"])
    def reconcile(self, request: HttpRequest, queryset: QuerySet[Project]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Reconcile with Stripe", perform=_reconcile)

    def has_reconcile_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "billing.run_reconciliation")

    @admin.action(description="Adopt the existing Stripe account", permissions=["adopt"])
    def adopt_stripe_account(
        self, request: HttpRequest, queryset: QuerySet[Project]
    ) -> TemplateResponse | None:
        return reason_action(
            self,
            request,
            queryset,
            title="Adopt the Stripe account",
            perform=_adopt,
            form_class=AdoptionForm,
        )

    def has_adopt_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "billing.run_adoption")


class AdoptionForm(ReasonForm):
    customer_metadata = forms.CharField(
        required=False, max_length=40, help_text="The Stripe customer metadata key holding the external id."
    )
    customer_field = forms.ChoiceField(
        required=False,
        choices=[("", "—"), ("email", "email"), ("id", "id")],
        help_text="Or the Stripe customer field used as the external id.",
    )
    mapping = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text="YAML, sync_catalog's shape: features, products with stripe_product, key, features, and "
        "meters (Stripe billing meter id: metered feature key).",
    )
    dry_run = forms.BooleanField(required=False, initial=True, help_text="Report only; change nothing.")

    def clean_mapping(self) -> Any:
        try:
            return yaml.safe_load(self.cleaned_data["mapping"]) or {}
        except yaml.YAMLError as exc:
            raise forms.ValidationError(f"Not valid YAML: {exc}") from exc

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("customer_metadata")) == bool(data.get("customer_field")):
            raise forms.ValidationError("Name either a metadata key or a customer field.")
        return data


def _adopt(project: Project, data: dict[str, Any], actor: Actor) -> str:
    key = (
        {"metadata": data["customer_metadata"]}
        if data["customer_metadata"]
        else {"field": data["customer_field"]}
    )
    run = adoption_start(
        project=project,
        actor=actor,
        customer_key=key,
        mapping=data["mapping"],
        dry_run=data["dry_run"],
        reason=data["reason"],
    )
    return f"adoption {run.pk} queued{' (dry run)' if run.dry_run else ''}: see Adoption runs for its report"


def _reconcile(project: Project, data: dict[str, Any], actor: Actor) -> str:
    run = reconcile(project=project, fix=True, actor=actor, reason=data["reason"])
    return f"{run.status}: {run.checked} checked, {run.drift_count} drift, {run.fixed_count} fixed"


admin.site.unregister(Project)
admin.site.register(Project, ProjectAdmin)
