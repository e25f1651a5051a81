"""The project page's operator actions that reach into billing: re-run reconciliation with Stripe, and adopt the
project's existing Stripe account; and billing's setting on it, the margin alerts' threshold. The project admin
itself is `projects.admin`; this subclass replaces its registration so the actions sit above billing."""

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
from projects.services import projects as services

# Set on a project's page by a change (not at its creation), as the API's PATCH sets it.
BILLING_SETTINGS = ("margin_alert_below_bps",)


class ProjectForm(projects_admin.ProjectForm):
    """The platform API's settings, and billing's (its range checked by the model's validators, as the API's)."""

    class Meta(projects_admin.ProjectForm.Meta):
        fields = [*projects_admin.ProjectForm.Meta.fields, *BILLING_SETTINGS]


class ProjectAdmin(projects_admin.ProjectAdmin):
    form = ProjectForm
    actions = [*projects_admin.ProjectAdmin.actions, "reconcile", "adopt_stripe_account"]

    def get_fields(self, request: HttpRequest, obj: Project | None = None) -> tuple[str, ...]:
        fields = tuple(super().get_fields(request, obj))
        if obj is None:
            return fields
        at = fields.index("status")
        return (*fields[:at], *BILLING_SETTINGS, *fields[at:])

    def save_model(self, request: HttpRequest, obj: Project, form: Any, change: bool) -> None:
        """A change goes through `project_update` as one change (one audit row), whichever settings it touches."""
        if not change:
            super().save_model(request, obj, form, change)
            return
        editable = set(self.get_fields(request, obj)) - set(self.get_readonly_fields(request, obj))
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in editable}
        if changes:
            services.project_update(
                actor=Actor.user(request.user),
                project=Project.objects.get(pk=obj.pk),
                reason="changed in the admin",
                **changes,
            )

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
