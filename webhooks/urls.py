from core.urls import route
from webhooks import outbound_apis as apis

urlpatterns = [
    *route("webhook_endpoints", apis.WebhookEndpointListCreateApi.as_view(), "webhook-endpoints"),
    *route(
        "webhook_endpoints/<str:endpoint_id>",
        apis.WebhookEndpointDetailApi.as_view(),
        "webhook-endpoint-detail",
    ),
    *route(
        "webhook_endpoints/<str:endpoint_id>/roll_secret",
        apis.WebhookEndpointRollSecretApi.as_view(),
        "webhook-endpoint-roll",
    ),
    *route("events", apis.EventListApi.as_view(), "events"),
    *route("events/<str:event_id>", apis.EventDetailApi.as_view(), "event-detail"),
    *route("events/<str:event_id>/redeliver", apis.EventRedeliverApi.as_view(), "event-redeliver"),
]
