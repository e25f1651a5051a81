"""Probes: /health and /live answer while the process runs; /ready names the dependency that failed."""

import pytest
from django.test import override_settings

from config.celery import app as celery_app

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def test_health_and_live(api):
    for path in ("/health", "/live"):
        response = api.get(path)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


def test_ready_when_everything_is_up(api):
    response = api.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
        "failed": [],
    }


def test_ready_is_503_naming_the_cache(api):
    broken = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": UNREACHABLE_REDIS,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    with override_settings(CACHES=broken):
        response = api.get("/ready")
    assert response.status_code == 503
    assert response.json()["failed"] == ["cache"]
    assert response.json()["checks"]["cache"] == "unavailable"


@pytest.fixture
def unreachable_broker():
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = UNREACHABLE_REDIS
    try:
        yield
    finally:
        celery_app.conf.broker_url = previous


def test_ready_is_503_naming_the_broker(api, unreachable_broker):
    with override_settings(CELERY_TASK_ALWAYS_EAGER=False):
        response = api.get("/ready")
    assert response.status_code == 503
    assert response.json()["failed"] == ["broker"]


@pytest.mark.postgres  # SQLite's in-memory test database cannot be disconnected
@pytest.mark.django_db(transaction=True)
def test_ready_is_503_naming_the_database(client):
    """The database really unreachable: the connection is pointed at a port where nothing listens."""
    from django.db import connection

    settings_dict = connection.settings_dict
    saved = dict(settings_dict)
    connection.close()
    settings_dict.update(HOST="127.0.0.1", PORT="1")
    try:
        response = client.get("/ready")
    finally:
        connection.close()
        settings_dict.clear()
        settings_dict.update(saved)
    assert response.status_code == 503
    assert response.json()["failed"] == ["database"]
    assert response.json()["checks"]["cache"] == "ok"
