"""`GET /metrics`: the Prometheus exposition of the process's registry.

Request metrics come from django-prometheus. Tollgate's own figures are read from the database at scrape time
rather than counted in process memory, so every web process reports the same figures (gunicorn runs several) and
nothing is lost on a restart: the back office owns the collectors of these figures (`backoffice.prometheus.billing`,
`backoffice.prometheus.events`) and registers them from its `AppConfig.ready()` with `collector_register`.
"""

import contextlib
import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import REGISTRY
from prometheus_client.registry import Collector

from core.errors import plain_view


def collector_register(collector: Collector) -> None:
    """Adds a collector to what `/metrics` exports. Its `describe()` must not touch the database: it runs now, at
    start-up. A second `ready()` in one process finds the names registered and changes nothing."""
    with contextlib.suppress(ValueError):
        REGISTRY.register(collector)


@plain_view("GET")
def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`. With METRICS_TOKEN set, the scraper must send `Authorization: Bearer <token>`: the figures
    are business data, not for the public internet."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given, token):
            return HttpResponse("Forbidden", status=403, content_type="text/plain")
    # django_prometheus has no type hints: its view answers the exposition as an HttpResponse.
    response: HttpResponse = ExportToDjangoView(request)
    return response
