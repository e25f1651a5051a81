"""Routes of the back office's API: subscription and revenue metrics, of a project or of all of them."""

from backoffice.apis import metrics
from core.urls import route

urlpatterns = [
    *route("metrics/subscriptions", metrics.SubscriptionMetricsApi.as_view(), "metrics-subscriptions"),
    *route("metrics/revenue", metrics.RevenueMetricsApi.as_view(), "metrics-revenue"),
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
