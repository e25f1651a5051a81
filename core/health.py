"""Liveness and readiness probes: `/health` and `/live` say the process is up; `/ready` checks its dependencies."""

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse

from core.errors import plain_view
from core.ids import random_token

logger = logging.getLogger(__name__)


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    probe = f"ready:{random_token(8)}"
    cache.set(probe, "1", timeout=5)
    if cache.get(probe) != "1":
        raise RuntimeError("cache did not return the value just written")
    cache.delete(probe)


def _check_broker() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return  # embedded mode: tasks run in-process, there is no broker to reach
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "cache": _check_cache,
    "broker": _check_broker,
}


@plain_view("GET")
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@plain_view("GET")
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@plain_view("GET")
def ready(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log, not the caller
            logger.warning("Readiness check %s failed: %s", name, exc.__class__.__name__)
            results[name] = "unavailable"
    failed = [name for name, result in results.items() if result != "ok"]
    return JsonResponse(
        {"status": "unavailable" if failed else "ok", "checks": results, "failed": failed},
        status=503 if failed else 200,
    )
