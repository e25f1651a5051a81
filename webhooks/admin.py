"""Stripe events in the back office: see, filter, and replay them."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from webhooks import services
from webhooks.models import StripeEvent, StripeWebhookEndpoint


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ["stripe_event_id", "type", "account", "status", "attempts", "received_at", "processed_at"]
    list_filter = ["status", "type", "account", "received_at"]
    search_fields = ["stripe_event_id", "type", "last_error"]
    list_select_related = ["project"]
    date_hierarchy = "received_at"
    actions = ["replay"]

    def get_readonly_fields(self, request: HttpRequest, obj: StripeEvent | None = None) -> list[str]:
        return [field.name for field in StripeEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Replay the selected events")
    def replay(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        for event in queryset:
            services.stripe_event_replay(event=event)
        self.message_user(request, f"Queued {queryset.count()} event(s) for processing.", messages.SUCCESS)


@admin.register(StripeWebhookEndpoint)
class StripeWebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["account", "url", "stripe_endpoint_id", "created_at"]
    exclude = ["secret"]
    readonly_fields = ["account", "project", "url", "stripe_endpoint_id", "created_at", "updated_at"]
