"""Top-level routes: the API under /api/v1/, the Stripe webhook intake, probes, schema and the admin."""

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from backoffice.dashboard import dashboard
from backoffice.demo import demo_return
from backoffice.demo_pricing import demo_pricing, demo_pricing_checkout
from core import health
from core.errors import api_route_not_found
from core.prometheus import metrics_view

_public = {"authentication_classes": [], "permission_classes": [AllowAny], "throttle_classes": []}

api_v1: list[URLPattern | URLResolver] = [
    path("", include("entitlements.urls")),
    path("", include("projects.urls")),
    path("", include("catalog.urls")),
    path("", include("billing.urls")),
    path("", include("customers.urls")),
    path("", include("events.urls")),
    path("", include("backoffice.urls")),
    path("", include("costs.urls")),
    path("", include("agents.urls")),
    # Unknown API routes answer in the error envelope even with DEBUG on (Django's debug 404 page is HTML).
    re_path(r"^.*$", api_route_not_found),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(**_public), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", **_public), name="swagger-ui"),
    path("", include("webhooks.urls")),
    path("metrics", metrics_view, name="prometheus-metrics"),
    path("health", health.health, name="health"),
    path("live", health.live, name="live"),
    path("ready", health.ready, name="ready"),
    path("admin/dashboard/", dashboard, name="admin-dashboard"),
    # 404 unless settings.DEMO_PAGES (make demo); routed always, so the setting decides at request time.
    path("demo/return", demo_return, name="demo-return"),
    path("demo/pricing", demo_pricing, name="demo-pricing"),
    path("demo/pricing/checkout", demo_pricing_checkout, name="demo-pricing-checkout"),
    path("admin/", admin.site.urls),
]

handler400 = "core.errors.handler400"
handler403 = "core.errors.handler403"
handler404 = "core.errors.handler404"
handler500 = "core.errors.handler500"
