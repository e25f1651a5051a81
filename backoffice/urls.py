"""Routes of the back office's API: subscription and revenue metrics, of a project or of all of them; a
customer's data export and erasure (they gather every domain)."""

from backoffice.apis import customer_privacy, metrics, revenue_recognition
from core.urls import route

urlpatterns = [
    *route(
        "customers/<str:customer_id>/export",
        customer_privacy.CustomerExportApi.as_view(),
        "customer-export",
    ),
    *route(
        "customers/<str:customer_id>/erase",
        customer_privacy.CustomerEraseApi.as_view(),
        "customer-erase",
    ),
    *route("metrics/subscriptions", metrics.SubscriptionMetricsApi.as_view(), "metrics-subscriptions"),
    *route("metrics/revenue", metrics.RevenueMetricsApi.as_view(), "metrics-revenue"),
    *route(
        "metrics/revenue_recognition",
        revenue_recognition.RevenueRecognitionApi.as_view(),
        "metrics-revenue-recognition",
    ),
    *route(
        "projects/<str:project_id>/metrics/subscriptions",
        metrics.ProjectSubscriptionMetricsApi.as_view(),
        "project-metrics-subscriptions",
    ),
    *route(
        "projects/<str:project_id>/metrics/revenue",
        metrics.ProjectRevenueMetricsApi.as_view(),
        "project-metrics-revenue",
    ),
]
