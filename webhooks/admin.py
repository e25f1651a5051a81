"""Stripe events in the back office: see, filter, and replay them."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from billing.handlers.registry import HANDLERS
from core.actors import Actor
from core.admin_actions import has_perm, reason_action
from core.admin_display import ViewOnly, column, status_column, stripe_json, unix_time_text
from core.admin_generics import ModelAdmin
from core.admin_lists import LargeListAdmin, known_values_filter
from projects.models import Project
from stripe_gateway.gateway import PLATFORM_ACCOUNT
from webhooks.models import StripeEvent, StripeWebhookEndpoint
from webhooks.services.replay import stripe_event_replay


def _accounts() -> list[str]:
    """The Stripe accounts events come from: the platform's and each project's own (its id)."""
    return [PLATFORM_ACCOUNT, *Project.objects.values_list("pk", flat=True)]


@admin.register(StripeEvent)
class StripeEventAdmin(LargeListAdmin, ViewOnly, ModelAdmin[StripeEvent]):
    # Newest first, and among events received together, Stripe's newest first.
    ordering = ("-received_at", "-stripe_created")
    list_display = [
        column("stripe_event_id", "Stripe event"),
        "type",
        "account",
        status_column(),
        "attempts",
        column("received_at", "Received"),
        column("processed_at", "Processed"),
    ]
    list_filter = [
        "status",
        known_values_filter("type", "type", lambda: HANDLERS),
        known_values_filter("account", "account", _accounts),
        "received_at",
    ]
    search_fields = ["stripe_event_id", "type", "last_error"]
    list_select_related = ["project"]
    actions = ["replay"]

    # Stripe's Unix times as moments: the event's own, and those inside its payload (the raw fields excluded).
    _SHOWN_AS = {"stripe_created": "created_at_stripe", "payload": "payload_readable"}
    exclude = list(_SHOWN_AS)

    def get_readonly_fields(self, request: HttpRequest, obj: StripeEvent | None = None) -> list[str]:
        return [self._SHOWN_AS.get(field.name, field.name) for field in StripeEvent._meta.fields]

    @admin.display(description="Created at Stripe", ordering="stripe_created")
    def created_at_stripe(self, event: StripeEvent) -> str:
        return unix_time_text(event.stripe_created)

    @admin.display(description="Payload")
    def payload_readable(self, event: StripeEvent) -> str:
        return stripe_json(event.payload)

    @admin.action(description="Replay the selected events", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Replay Stripe events", perform=_replay)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "webhooks.replay_stripeevent")


def _replay(event: StripeEvent, data: dict[str, Any], actor: Actor) -> None:
    stripe_event_replay(event=event, actor=actor, reason=data["reason"])


@admin.register(StripeWebhookEndpoint)
class StripeWebhookEndpointAdmin(ViewOnly, ModelAdmin[StripeWebhookEndpoint]):
    list_display = [
        "account",
        "url",
        column("stripe_endpoint_id", "Stripe endpoint"),
        column("api_version", "Stripe API version"),
        column("created_at", "Created"),
    ]
    exclude = ["secret", "previous_secret"]
    readonly_fields = [
        "account",
        "project",
        "url",
        "stripe_endpoint_id",
        "api_version",
        "previous_secret_until",
        "created_at",
        "updated_at",
    ]
