"""`GET /metrics`: the Prometheus exposition of the process's registry.

Request metrics come from django-prometheus. Tollgate's own figures are read from the database at scrape time
rather than counted in process memory, so every web process reports the same figures (gunicorn runs several) and
nothing is lost on a restart: the back office owns the collectors of these figures (`backoffice.prometheus.billing`,
`backoffice.prometheus.events`) and registers them from its `AppConfig.ready()` with `collector_register`.

With several gunicorn workers, PROMETHEUS_MULTIPROC_DIR makes prometheus_client keep each worker's counts in files
there (config/gunicorn.py empties it at start and marks a dead worker's files); a scrape, whichever worker answers
it, then sums every worker's counters, and adds the database collectors.
"""

import contextlib
import hmac
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from core.errors import plain_view

# The collectors that read the database: in multiprocess mode the scrape's registry is built anew with them.
_database_collectors: list[Collector] = []


def collector_register(collector: Collector) -> None:
    """Adds a collector to what `/metrics` exports. Its `describe()` must not touch the database: it runs now, at
    start-up. A second `ready()` in one process finds the names registered and changes nothing."""
    try:
        REGISTRY.register(collector)
    except ValueError:
        return
    _database_collectors.append(collector)


def _registry() -> CollectorRegistry:
    """The process's registry; with PROMETHEUS_MULTIPROC_DIR, every worker's counts (the per-process collectors, such
    as `process_*`, cannot be summed and are left out) and the database collectors."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    for collector in _database_collectors:
        with contextlib.suppress(ValueError):
            registry.register(collector)
    return registry


@plain_view("GET")
def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`. With METRICS_TOKEN set, the scraper must send `Authorization: Bearer <token>`: the figures
    are business data, not for the public internet."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given, token):
            return HttpResponse("Forbidden", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
