"""Tenant events in the back office: events, their deliveries (redeliver), and the projects' endpoints (changed
through the endpoint services, so a new secret is shown once)."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from core.actors import Actor
from core.admin_display import NEWEST_FIRST, ViewOnly, column, status_column
from core.admin_generics import ModelAdmin, TabularInline
from core.admin_lists import LargeListAdmin, known_values_filter
from core.errors import ApiError
from events.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from events.services.endpoints import (
    endpoint_create,
    endpoint_delete,
    endpoint_update,
    endpoint_url_validate,
    events_validate,
)
from events.services.record import event_redeliver
from events.types import EVENT_TYPES


class DeliveryAttemptInline(TabularInline[DeliveryAttempt, Delivery]):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["attempted_at", "status_code", "latency_ms", "error", "response_body"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(LargeListAdmin, ViewOnly, ModelAdmin[Delivery]):
    ordering = NEWEST_FIRST
    list_display = [
        column("id", "ID"),
        "project",
        "event",
        "endpoint",
        status_column(),
        "attempts",
        column("last_attempt_at", "Last attempt"),
        column("next_attempt_at", "Next attempt"),
    ]
    list_filter = ["status", "project"]
    search_fields = ["id", "event__id", "endpoint__url"]
    list_select_related = ["project", "event", "endpoint"]
    readonly_fields = [
        "id",
        "project",
        "event",
        "endpoint",
        "status",
        "attempts",
        "next_attempt_at",
        "last_attempt_at",
        "created_at",
    ]
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver"]

    @admin.action(description="Redeliver the selected deliveries' events")
    def redeliver(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        for event in Event.objects.filter(pk__in=queryset.values("event_id")):
            event_redeliver(event=event)
        self.message_user(request, "Queued for redelivery.", messages.SUCCESS)


@admin.register(Event)
class EventAdmin(LargeListAdmin, ViewOnly, ModelAdmin[Event]):
    list_display = [column("id", "ID"), "project", "type", "sequence", column("created_at", "Created")]
    list_filter = [known_values_filter("type", "type", lambda: EVENT_TYPES), "project"]
    search_fields = ["id", "type"]
    list_select_related = ["project"]
    readonly_fields = ["id", "project", "type", "sequence", "data", "previous_attributes", "created_at"]


class WebhookEndpointForm(forms.ModelForm):  # type: ignore[type-arg]
    url = forms.URLField(label="URL", max_length=2000, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["project", "url", "events", "description", "enabled"]

    def clean_url(self) -> str:
        try:
            return endpoint_url_validate(self.cleaned_data["url"])
        except ApiError as exc:
            raise ValidationError(exc.message) from exc

    def clean_events(self) -> list[str]:
        events = self.cleaned_data["events"]
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise ValidationError('A JSON list of event types, e.g. ["*"] or ["payment.succeeded"].')
        try:
            return events_validate(events)
        except ApiError as exc:
            raise ValidationError(exc.message) from exc


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ModelAdmin[WebhookEndpoint]):
    """Endpoints are created, changed and deleted through the outbound services: a new endpoint's signing
    secret is generated there and shown once to the operator."""

    form = WebhookEndpointForm
    list_display = [
        "url",
        "project",
        column("enabled", "Enabled", boolean=True),
        column("failing_since", "Failing since"),
        column("disabled_reason", "Why disabled"),
        column("created_at", "Created"),
    ]
    list_filter = ["enabled", "project"]
    search_fields = ["url", "id"]
    list_select_related = ["project"]
    fields = [
        "project",
        "url",
        "events",
        "description",
        "enabled",
        "failing_since",
        "disabled_reason",
        "created_at",
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> list[str]:
        fixed = ["failing_since", "disabled_reason", "created_at"]
        return [*fixed, "project"] if obj is not None else fixed

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        # The form validated url and events with the services' own rules.
        actor = Actor.user(request.user)
        if change:
            editable = ("url", "events", "description", "enabled")
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in editable}
            endpoint_update(endpoint=WebhookEndpoint.objects.get(pk=obj.pk), actor=actor, **changes)
            return
        endpoint, secret = endpoint_create(
            project=form.cleaned_data["project"],
            actor=actor,
            url=form.cleaned_data["url"],
            events=form.cleaned_data["events"],
            description=form.cleaned_data.get("description") or "",
            enabled=form.cleaned_data.get("enabled", True),
        )
        obj.pk = endpoint.pk
        self.message_user(request, f"Signing secret (shown once, copy it now): {secret}", messages.WARNING)

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        endpoint_delete(endpoint=obj, actor=Actor.user(request.user))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            endpoint_delete(endpoint=endpoint, actor=Actor.user(request.user))
