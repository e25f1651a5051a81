"""Request-path benchmark of authentication, as a ratio to `GET /health` measured in the same run.

Measured: a warm authenticated `GET /api/v1/project` (auth served from the cache: no SQL), the same with the
in-process auth cache disabled (one shared-cache round trip), and a cold request (cache cleared before each
call: a key lookup in the database).
"""

import statistics
import time
from collections.abc import Callable

ROUNDS = 5
CALLS = 400


def _time(call: Callable[[], object], before: Callable[[], None] | None = None) -> float:
    """Median per-call microseconds over ROUNDS rounds of CALLS calls."""
    results = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(CALLS):
            if before is not None:
                before()
            call()
        results.append((time.perf_counter() - started) / CALLS * 1e6)
    return statistics.median(results)


def run() -> None:
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    from bench.setup import report
    from core.actors import Actor
    from core.ids import random_token
    from projects.authentication import local_cache
    from projects.services import projects as services

    slug = f"bench-{random_token(8).lower()}"
    _, _, secret = services.project_create(actor=Actor.system("bench"), slug=slug, name="Bench")
    client = Client()
    headers = {"Authorization": f"Bearer {secret}"}

    def health() -> object:
        return client.get("/health")

    def project() -> object:
        response = client.get("/api/v1/project", headers=headers)
        assert response.status_code == 200, response.content
        return response

    def cold() -> None:
        cache.clear()
        local_cache.clear()

    with override_settings(API_RATE_LIMIT_PER_MINUTE=0):
        project()
        with CaptureQueriesContext(connection) as queries:
            project()
        baseline = _time(health)
        warm = _time(project)
        with override_settings(AUTH_LOCAL_CACHE_SECONDS=0):
            shared_only = _time(project)
        cold_time = _time(project, before=cold)

    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    report(
        f"Authentication (database: {connection.vendor}; cache: {backend}) — lower is better",
        [
            ("GET /health (baseline)", baseline, "µs/call"),
            ("GET /api/v1/project, warm", warm, "µs/call"),
            ("GET /api/v1/project, shared cache only", shared_only, "µs/call"),
            ("GET /api/v1/project, cold (cache cleared)", cold_time, "µs/call"),
        ],
        baseline,
    )
    print(f"SQL queries on a warm authenticated request: {len(queries.captured_queries)}")
