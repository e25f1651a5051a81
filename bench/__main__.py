"""`make bench`: request-path benchmarks, each reported as a ratio to a baseline measured in the same run.

Baseline: `GET /health` (no authentication, no database). Measured: a warm authenticated `GET /api/v1/project`
(auth served from the cache: no SQL), the same with the in-process auth cache disabled (one shared-cache
round trip), and a cold request (cache cleared before each call: a key lookup in the database).
Uses DATABASE_URL / REDIS_URL when set, else a throwaway SQLite file under var/.
"""

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}")
(ROOT / "var").mkdir(exist_ok=True)
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402

from core.actors import Actor  # noqa: E402
from core.ids import random_token  # noqa: E402
from projects import services  # noqa: E402
from projects.authentication import local_cache  # noqa: E402

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


def main() -> None:
    call_command("migrate", verbosity=0)
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

    print(f"database: {connection.vendor}; cache: {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}")
    print(f"{'case':<44}{'µs/call':>10}{'× baseline':>12}")
    for name, value in [
        ("GET /health (baseline)", baseline),
        ("GET /api/v1/project, warm", warm),
        ("GET /api/v1/project, shared cache only", shared_only),
        ("GET /api/v1/project, cold (cache cleared)", cold_time),
    ]:
        print(f"{name:<44}{value:>10.1f}{value / baseline:>12.2f}")
    print(f"SQL queries on a warm authenticated request: {len(queries.captured_queries)}")


if __name__ == "__main__":
    main()
