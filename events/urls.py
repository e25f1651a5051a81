from core.urls import route
from events.apis import endpoints, events

urlpatterns = [
    *route("webhook_endpoints", endpoints.WebhookEndpointListCreateApi.as_view(), "webhook-endpoints"),
    *route(
        "webhook_endpoints/<str:endpoint_id>",
        endpoints.WebhookEndpointDetailApi.as_view(),
        "webhook-endpoint-detail",
    ),
    *route(
        "webhook_endpoints/<str:endpoint_id>/roll_secret",
        endpoints.WebhookEndpointRollSecretApi.as_view(),
        "webhook-endpoint-roll",
    ),
    *route("events", events.EventListApi.as_view(), "events"),
    *route("events/<str:event_id>", events.EventDetailApi.as_view(), "event-detail"),
    *route("events/<str:event_id>/redeliver", events.EventRedeliverApi.as_view(), "event-redeliver"),
]
