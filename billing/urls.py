from django.urls import include, path

from billing import metrics_apis
from core.urls import route

urlpatterns = [
    path("", include("billing.catalog.urls")),
    path("", include("billing.payments.urls")),
    path("", include("billing.subscriptions.urls")),
    path("", include("billing.discounts.urls")),
    path("", include("billing.testclocks.urls")),
    *route("metrics/subscriptions", metrics_apis.SubscriptionMetricsApi.as_view(), "metrics-subscriptions"),
    *route("metrics/revenue", metrics_apis.RevenueMetricsApi.as_view(), "metrics-revenue"),
    *route(
        "projects/<str:project_id>/metrics/subscriptions",
        metrics_apis.ProjectSubscriptionMetricsApi.as_view(),
        "project-metrics-subscriptions",
    ),
    *route(
        "projects/<str:project_id>/metrics/revenue",
        metrics_apis.ProjectRevenueMetricsApi.as_view(),
        "project-metrics-revenue",
    ),
]
