"""The shared cache with Redis is django-redis, configured in the settings (Tollgate has no backend of its own),
and a Redis outage still costs a fallback, never an error: core.cache answers as when Redis is absent."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from django.core.cache import caches
from django.test import override_settings
from django_redis.cache import RedisCache

from core import cache as core_cache

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }
}


def test_a_redis_url_configures_django_redis_with_one_second_socket_timeouts():
    env = {k: v for k, v in os.environ.items() if k != "CACHE_KEY_PREFIX"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.test", REDIS_URL="redis://cache.internal:6379/3")
    probe = "import json, django; django.setup(); from django.conf import settings; print(json.dumps(settings.CACHES))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://cache.internal:6379/3",
            "KEY_PREFIX": "tollgate",
            "TIMEOUT": 300,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }


def test_redis_client_is_the_backends_one_client_with_the_options_on_its_pool():
    with override_settings(CACHES=UNREACHABLE):  # nothing connects until a command is sent
        backend, client = core_cache.redis_client()
        assert isinstance(backend, RedisCache)
        assert backend is caches["default"]
        assert core_cache.redis_client() == (backend, client)  # the same client on every call
        assert backend.client.get_client(write=False) is client  # one server: reads and writes share it
        kwargs = client.connection_pool.connection_kwargs
        assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (0.2, 0.2)


def test_with_redis_unreachable_every_cache_call_falls_back_and_warns_once(caplog, monkeypatch):
    monkeypatch.setattr(core_cache, "_last_warned", {})
    with override_settings(CACHES=UNREACHABLE), caplog.at_level(logging.WARNING, logger="core.cache"):
        answers = [
            core_cache.cache_get("k"),
            core_cache.cache_get("k"),
            core_cache.cache_get_many(["k", "j"]),
            core_cache.cache_set("k", 1, 60),
            core_cache.cache_add("k", 1, 60),
        ]
    assert answers == [None, None, {}, None, None]
    assert [record.getMessage() for record in caplog.records] == [
        f"Cache {operation} failed (ConnectionError); continuing without the cache."
        for operation in ("get", "get_many", "set", "add")
    ]
