"""Projects and keys in the back office. Projects are created and changed through `projects.services.projects` (audited);
keys are never edited (their secrets are not stored): they are created, rotated and revoked by actions."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from rest_framework import serializers

from core.actors import Actor
from core.admin_actions import has_perm, reason_action
from core.admin_display import ViewOnly, column, status_column
from core.serializers import CurrencyField, HostField
from projects.models import ApiKey, PlatformKey, Project
from projects.services import keys as key_services
from projects.services import projects as services


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


# What an operator sets on a project (its Stripe secrets go through the platform API only: never shown here).
_SETTINGS = (
    "name",
    "default_currency",
    "allowed_redirect_hosts",
    "payment_ttl_seconds",
    "default_flow",
    "default_product",
    "stripe_publishable_key",
    "refund_late_payments",
    "first_invoice_void_ends_subscription",
    "proration_upgrade",
    "proration_downgrade",
    "proration_interval_change",
)


_SET_BY_A_CHANGE = (
    "refund_late_payments",
    "first_invoice_void_ends_subscription",
    "proration_upgrade",
    "proration_downgrade",
    "proration_interval_change",
)


class ProjectForm(forms.ModelForm):
    """The settings the platform API takes, checked by its rules (hosts, currency)."""

    class Meta:
        model = Project
        fields = ["slug", *_SETTINGS]

    def clean_default_currency(self) -> str:
        return str(_api_value(CurrencyField(), self.cleaned_data["default_currency"]))

    def clean_allowed_redirect_hosts(self) -> list[str]:
        hosts = self.cleaned_data["allowed_redirect_hosts"] or []
        if not isinstance(hosts, list) or len(hosts) > 100:
            raise forms.ValidationError('A JSON list of at most 100 hosts, e.g. ["app.example.com"].')
        return [str(_api_value(HostField(), host, name=repr(host))) for host in hosts]


def _api_value(field: Any, value: Any, name: str = "") -> Any:
    """`value` as the platform API's serializer field takes it, or the API's message as the form's error."""
    try:
        return field.run_validation(value)
    except serializers.ValidationError as exc:
        errors = exc.detail if isinstance(exc.detail, list) else [exc.detail]
        raise forms.ValidationError([f"{name}: {e}" if name else str(e) for e in errors]) from exc


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    """Projects are created and changed through `projects.services.projects`, as the platform API does: audited with the
    operator, the project's keys and cached answers refreshed. A new project's first key is shown once."""

    form = ProjectForm
    list_display = [
        "slug",
        "name",
        status_column(),
        column("default_currency", "Currency"),
        column("default_flow", "Payment flow"),
        column("created_at", "Created"),
    ]
    list_filter = ["status", "default_flow", "default_currency"]
    search_fields = ["slug", "name", "id"]
    inlines = [ApiKeyInline]
    actions = ["suspend", "reactivate"]

    def get_fields(self, request: HttpRequest, obj: Project | None = None) -> tuple[str, ...]:
        if (
            obj is None
        ):  # create's settings (refund_late_payments and the proration rules are set by a change)
            return ("slug", *(name for name in _SETTINGS if name not in _SET_BY_A_CHANGE))
        return (
            "id",
            "slug",
            *_SETTINGS,
            "status",
            "stripe_portal_configuration_id",
            "created_at",
            "updated_at",
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Project | None = None) -> list[str]:
        if obj is None:
            return []
        return ["id", "slug", "status", "stripe_portal_configuration_id", "created_at", "updated_at"]

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # it would take every customer, payment and subscription with it: suspend it instead

    def save_model(self, request: HttpRequest, obj: Project, form: Any, change: bool) -> None:
        actor = Actor.user(request.user)
        data = form.cleaned_data
        if change:
            changes = {name: data[name] for name in form.changed_data if name in _SETTINGS}
            if changes:
                services.project_update(
                    actor=actor,
                    project=Project.objects.get(pk=obj.pk),
                    reason="changed in the admin",
                    **changes,
                )
            return
        project, api_key, secret = services.project_create(
            actor=actor, slug=data["slug"], **{name: data[name] for name in _SETTINGS if name in data}
        )
        obj.pk = project.pk
        self.message_user(
            request,
            f"Project key {api_key.prefix}… (shown once, copy it now): {secret}",
            messages.WARNING,
        )

    @admin.action(description="Suspend (its keys stop working within a second)", permissions=["suspend"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Project]) -> TemplateResponse | None:
        return reason_action(
            self, request, queryset, title="Suspend projects", perform=_set_status(Project.Status.SUSPENDED)
        )

    @admin.action(description="Reactivate", permissions=["suspend"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Project]) -> TemplateResponse | None:
        return reason_action(
            self, request, queryset, title="Reactivate projects", perform=_set_status(Project.Status.ACTIVE)
        )

    def has_suspend_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "projects.suspend_project")


@admin.register(ApiKey)
class ApiKeyAdmin(ViewOnly, admin.ModelAdmin):
    """Keys are created, rotated and revoked through `projects.services.projects` (audited): never edited."""

    list_display = [
        "prefix",
        "project",
        "name",
        column("created_at", "Created"),
        column("last_used_at", "Last used"),
        column("revoked_at", "Revoked"),
    ]
    list_filter = ["project", "revoked_at"]
    search_fields = ["prefix", "id", "project__slug"]
    list_select_related = ["project"]
    fields = readonly_fields = ("id", "project", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["rotate", "revoke"]

    @admin.action(
        description="Rotate (a new key is shown once; this one is revoked)", permissions=["manage_keys"]
    )
    def rotate(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Rotate API keys", perform=_rotate)

    @admin.action(description="Revoke", permissions=["manage_keys"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Revoke API keys", perform=_revoke)

    def has_manage_keys_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "projects.manage_project_keys")


def _set_status(status: str) -> Callable[[Project, dict[str, Any], Actor], str]:
    def perform(project: Project, data: dict[str, Any], actor: Actor) -> str:
        updated = services.project_update(actor=actor, project=project, reason=data["reason"], status=status)
        return f"now {updated.status}"

    return perform


def _rotate(api_key: ApiKey, data: dict[str, Any], actor: Actor) -> str:
    new_key, secret = key_services.api_key_create(
        actor=actor, project=api_key.project, name=f"rotated from {api_key.prefix}"
    )
    key_services.api_key_revoke(actor=actor, api_key=api_key, reason=data["reason"])
    # Shown once, to this operator only: the secret is not stored.
    return f"new key {new_key.prefix}… — copy it now, it will not be shown again: {secret}"


def _revoke(api_key: ApiKey, data: dict[str, Any], actor: Actor) -> None:
    key_services.api_key_revoke(actor=actor, api_key=api_key, reason=data["reason"])


@admin.register(PlatformKey)
class PlatformKeyAdmin(ViewOnly, admin.ModelAdmin):
    list_display = [
        "prefix",
        "name",
        column("created_at", "Created"),
        column("last_used_at", "Last used"),
        column("revoked_at", "Revoked"),
    ]
    search_fields = ["prefix", "id", "name"]
    fields = readonly_fields = ("id", "name", "prefix", "created_at", "last_used_at", "revoked_at")
