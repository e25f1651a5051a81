"""Every way a request can fail authentication or authorisation, and what a warm request costs."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from core.actors import Actor
from core.cache import LocalCache, cache_epoch_bump
from core.models import AuditLogEntry
from projects.models import ApiKey, Project
from projects.services import keys as key_services
from tests.projects.factories import ApiKeyFactory, PlatformKeyFactory

TENANT_ROUTE = "/api/v1/project"
PLATFORM_ROUTE = "/api/v1/projects"


def _error(response):
    return response.json()["error"]


def test_no_key_is_401(api, tenant_a):
    response = api.get(TENANT_ROUTE)
    assert response.status_code == 401
    assert _error(response) == {
        "type": "authentication_error",
        "code": "missing_api_key",
        "message": "No API key provided. Send `Authorization: Bearer <key>`.",
        "param": None,
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    "header",
    ["Bearer tg_sk_doesnotexist000000000000000000000000000", "Basic dXNlcjpwYXNz", "Bearer", "Bearer a b"],
)
def test_unknown_or_malformed_key_is_401(api, tenant_a, header):
    response = api.get(TENANT_ROUTE, headers={"Authorization": header})
    assert response.status_code == 401
    assert _error(response)["type"] == "authentication_error"
    assert _error(response)["code"] == "invalid_api_key"


def test_revoked_key_is_401(api, tenant_a):
    tenant_a.api_key.revoked_at = tenant_a.api_key.created_at
    tenant_a.api_key.save()
    response = api.get(TENANT_ROUTE, key=tenant_a.key)
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_api_key"


def test_platform_key_on_tenant_route_is_403(api, platform_key):
    response = api.get(TENANT_ROUTE, key=platform_key)
    assert response.status_code == 403
    assert _error(response)["type"] == "permission_error"
    assert _error(response)["code"] == "wrong_key_type"


def test_project_key_on_platform_route_is_403_and_creates_nothing(api, tenant_a):
    response = api.post(PLATFORM_ROUTE, {"slug": "sneaky", "name": "Sneaky"}, key=tenant_a.key)
    assert response.status_code == 403
    assert _error(response)["code"] == "wrong_key_type"
    assert not Project.objects.filter(slug="sneaky").exists()


def test_suspended_project_is_403(api, tenant_a):
    Project.objects.filter(pk=tenant_a.project.pk).update(status=Project.Status.SUSPENDED)
    response = api.get(TENANT_ROUTE, key=tenant_a.key)
    assert response.status_code == 403
    assert _error(response)["code"] == "project_suspended"


def test_revoked_platform_key_is_401(api, db):
    platform_key = PlatformKeyFactory()
    platform_key.revoked_at = platform_key.created_at
    platform_key.save()
    assert api.get(PLATFORM_ROUTE, key=platform_key.secret).status_code == 401


def test_valid_key_reaches_its_project(api, tenant_a, tenant_b):
    response = api.get(TENANT_ROUTE, key=tenant_a.key)
    assert response.status_code == 200
    assert response.json()["id"] == tenant_a.project.pk
    assert response.json()["slug"] == "alpha"


@pytest.fixture
def epoch_read_once():
    """The cache epoch is read from the database once per CACHE_EPOCH_CHECK_SECONDS (1 s) per process: a slow
    machine may cross that between two requests. Here it is read once, by the warming request, and kept."""
    with override_settings(CACHE_EPOCH_CHECK_SECONDS=300):
        cache_epoch_bump("the test reads the epoch afresh")  # the next read is the database's, kept 300 s
        yield


def test_warm_request_costs_no_query_and_no_write(api, tenant_a, epoch_read_once):
    assert api.get(TENANT_ROUTE, key=tenant_a.key).status_code == 200  # warms the cache, touches last_used_at
    touched = ApiKey.objects.get(pk=tenant_a.api_key.pk).last_used_at
    assert touched is not None
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            assert api.get(TENANT_ROUTE, key=tenant_a.key).status_code == 200
    assert [q["sql"] for q in queries.captured_queries] == []
    assert ApiKey.objects.get(pk=tenant_a.api_key.pk).last_used_at == touched


@override_settings(AUTH_LOCAL_CACHE_SECONDS=0)
def test_warm_request_without_local_cache_still_costs_no_query(api, tenant_a, epoch_read_once):
    api.get(TENANT_ROUTE, key=tenant_a.key)
    with CaptureQueriesContext(connection) as queries:
        assert api.get(TENANT_ROUTE, key=tenant_a.key).status_code == 200
    assert len(queries.captured_queries) == 0


def test_revocation_takes_effect_on_the_next_request(api, tenant_a):
    assert api.get(TENANT_ROUTE, key=tenant_a.key).status_code == 200
    other = ApiKeyFactory(project=tenant_a.project)
    response = api.delete(f"/api/v1/project/api_keys/{tenant_a.api_key.pk}", key=other.secret)
    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None
    assert api.get(TENANT_ROUTE, key=tenant_a.key).status_code == 401
    assert api.get(TENANT_ROUTE, key=other.secret).status_code == 200


def test_revocation_reaches_other_processes_through_the_shared_cache(api, tenant_a):
    """Another process holds only its short-lived local copy; the shared entry is gone at commit."""
    from projects import authentication

    assert api.get(TENANT_ROUTE, key=tenant_a.key).status_code == 200
    key_services.api_key_revoke(actor=Actor.system(), api_key=tenant_a.api_key)
    # The revocation ran in the test transaction; run its on_commit invalidation as a commit would.
    authentication.auth_cache_invalidate([tenant_a.api_key.key_hash])
    other_process = LocalCache()
    original, authentication.local_cache = authentication.local_cache, other_process
    try:
        assert authentication.principal_for_secret(tenant_a.key) is None
    finally:
        authentication.local_cache = original


def test_local_cache_ttl_is_at_most_a_second():
    from django.conf import settings

    assert settings.AUTH_LOCAL_CACHE_SECONDS <= 1.0


def test_suspension_takes_effect_on_the_next_request(api, tenant_a, platform_key):
    assert api.get(TENANT_ROUTE, key=tenant_a.key).status_code == 200
    response = api.patch(
        f"/api/v1/projects/{tenant_a.project.slug}",
        {"status": "suspended", "reason": "unpaid"},
        key=platform_key,
    )
    assert response.status_code == 200
    assert api.get(TENANT_ROUTE, key=tenant_a.key).status_code == 403
    entry = AuditLogEntry.objects.get(action="project.suspended")
    assert entry.reason == "unpaid"
    assert entry.before["status"] == "active"
    assert entry.after["status"] == "suspended"
    response = api.patch(f"/api/v1/projects/{tenant_a.project.slug}", {"status": "active"}, key=platform_key)
    assert response.status_code == 200
    assert api.get(TENANT_ROUTE, key=tenant_a.key).status_code == 200


def test_cache_outage_falls_back_to_the_database(api, tenant_a, platform_key):
    unreachable = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    with override_settings(CACHES=unreachable, AUTH_LOCAL_CACHE_SECONDS=0, API_RATE_LIMIT_PER_MINUTE=5):
        assert api.get(TENANT_ROUTE, key=tenant_a.key).status_code == 200
        api_key = ApiKeyFactory(project=tenant_a.project)
        key_services.api_key_revoke(actor=Actor.system(), api_key=api_key)
        assert api.get(TENANT_ROUTE, key=api_key.secret).status_code == 401
        assert api.get(PLATFORM_ROUTE, key=platform_key).status_code == 200
