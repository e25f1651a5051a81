"""The platform's /projects API and a project's own /project API."""

import pytest
from django.db import connection

from core.models import AuditLogEntry
from projects.keys import hash_secret
from projects.models import ApiKey, Project
from tests.projects.factories import ApiKeyFactory, ProjectFactory


def _counts():
    return Project.objects.count(), ApiKey.objects.count(), AuditLogEntry.objects.count()


def test_create_returns_the_key_once_and_it_works(api, platform_key):
    response = api.post(
        "/api/v1/projects",
        {
            "slug": "shop",
            "name": "Shop",
            "default_currency": "EUR",
            "allowed_redirect_hosts": ["Shop.Example.com", "localhost:3000"],
            "payment_ttl_seconds": 3600,
            "default_flow": "intent",
            "stripe_secret_key": "sk_test_ownaccount123",
            "stripe_publishable_key": "pk_test_ownaccount123",
            "stripe_webhook_secret": "whsec_ownsecret123",
        },
        key=platform_key,
    )
    assert response.status_code == 201
    body = response.json()
    assert body["object"] == "project"
    assert body["id"].startswith("proj_")
    assert body["slug"] == "shop"
    assert body["status"] == "active"
    assert body["default_currency"] == "eur"
    assert body["allowed_redirect_hosts"] == ["shop.example.com", "localhost:3000"]
    assert body["payment_ttl_seconds"] == 3600
    assert body["default_flow"] == "intent"
    assert body["stripe_publishable_key"] == "pk_test_ownaccount123"
    assert body["has_stripe_secret_key"] is True
    assert body["has_stripe_webhook_secret"] is True
    assert "stripe_secret_key" not in body
    assert "stripe_webhook_secret" not in body
    secret = body["api_key"]
    assert secret.startswith("tg_sk_")

    api_key = ApiKey.objects.get(project_id=body["id"])
    assert api_key.key_hash == hash_secret(secret)
    assert secret.startswith(api_key.prefix)
    assert api.get("/api/v1/project", key=secret).json()["slug"] == "shop"

    fetched = api.get(f"/api/v1/projects/{body['id']}", key=platform_key).json()
    assert "api_key" not in fetched
    assert AuditLogEntry.objects.filter(action="project.created", target_id=body["id"]).count() == 1


def test_stripe_secrets_are_encrypted_at_rest(api, platform_key):
    api.post(
        "/api/v1/projects",
        {
            "slug": "enc",
            "name": "Enc",
            "stripe_secret_key": "sk_test_plaintextnever",
            "stripe_webhook_secret": "whsec_x1",
        },
        key=platform_key,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT stripe_secret_key, stripe_webhook_secret FROM projects_project WHERE slug = 'enc'"
        )
        raw_key, raw_whsec = cursor.fetchone()
    assert "plaintextnever" not in raw_key
    assert raw_key.startswith("gAAAA")  # a Fernet token
    assert "whsec_x1" not in raw_whsec
    project = Project.objects.get(slug="enc")
    assert project.stripe_secret_key == "sk_test_plaintextnever"
    assert project.stripe_webhook_secret == "whsec_x1"
    entry = AuditLogEntry.objects.get(action="project.created", target_id=project.pk)
    assert entry.after["stripe_secret_key"] == "set"


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"name": "No slug"}, "slug", "parameter_missing"),
        ({"slug": "has space", "name": "x"}, "slug", "invalid_parameter"),
        ({"slug": "ok", "name": "x", "default_currency": "euro"}, "default_currency", "invalid_parameter"),
        (
            {"slug": "ok", "name": "x", "payment_ttl_seconds": 90000},
            "payment_ttl_seconds",
            "invalid_parameter",
        ),
        (
            {"slug": "ok", "name": "x", "payment_ttl_seconds": "soon"},
            "payment_ttl_seconds",
            "invalid_parameter",
        ),
        ({"slug": "ok", "name": "x", "default_flow": "teleport"}, "default_flow", "invalid_parameter"),
        (
            {"slug": "ok", "name": "x", "allowed_redirect_hosts": ["https://x.com/"]},
            "allowed_redirect_hosts[0]",
            "invalid_parameter",
        ),
        (
            {"slug": "ok", "name": "x", "allowed_redirect_hosts": "x.com"},
            "allowed_redirect_hosts",
            "invalid_parameter",
        ),
        (
            {"slug": "ok", "name": "x", "stripe_secret_key": "pk_test_wrongkind"},
            "stripe_secret_key",
            "invalid_parameter",
        ),
        ({"slug": "ok", "name": "x", "colour": "blue"}, "colour", "unknown_parameter"),
    ],
)
def test_create_rejects_bad_input_and_writes_nothing(api, platform_key, body, param, code):
    before = _counts()
    response = api.post("/api/v1/projects", body, key=platform_key)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["code"] == code
    assert error["message"].startswith(f"{param}: ")
    assert _counts() == before


def test_duplicate_slug_is_409_and_writes_nothing(api, platform_key):
    ProjectFactory(slug="taken")
    before = _counts()
    response = api.post("/api/v1/projects", {"slug": "taken", "name": "Again"}, key=platform_key)
    assert response.status_code == 409
    assert response.json()["error"] == {
        "type": "conflict",
        "code": "slug_taken",
        "message": "A project with slug 'taken' already exists.",
        "param": "slug",
    }
    assert _counts() == before


def test_get_by_id_or_slug_and_unknown_is_404(api, platform_key, tenant_a):
    by_id = api.get(f"/api/v1/projects/{tenant_a.project.pk}", key=platform_key)
    by_slug = api.get("/api/v1/projects/alpha/", key=platform_key)
    assert by_id.status_code == by_slug.status_code == 200
    assert by_id.json() == by_slug.json()
    missing = api.get("/api/v1/projects/nope", key=platform_key)
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found"


def test_patch_updates_settings_and_audits(api, platform_key, tenant_a):
    response = api.patch(
        "/api/v1/projects/alpha", {"name": "Alpha Two", "payment_ttl_seconds": 600}, key=platform_key
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Alpha Two"
    assert response.json()["payment_ttl_seconds"] == 600
    entry = AuditLogEntry.objects.get(action="project.updated")
    assert entry.before["name"] == "Alpha"
    assert entry.after["name"] == "Alpha Two"
    assert entry.actor_type == "platform_key"


def test_patch_cannot_change_slug(api, platform_key, tenant_a):
    before = _counts()
    response = api.patch("/api/v1/projects/alpha", {"slug": "omega"}, key=platform_key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "immutable_field"
    assert response.json()["error"]["param"] == "slug"
    assert Project.objects.get(pk=tenant_a.project.pk).slug == "alpha"
    assert _counts() == before


def test_patch_bad_input_changes_nothing(api, platform_key, tenant_a):
    response = api.patch("/api/v1/projects/alpha", {"status": "deleted"}, key=platform_key)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "status"
    assert Project.objects.get(pk=tenant_a.project.pk).status == "active"
    assert AuditLogEntry.objects.count() == 0


def test_list_projects_paginates_newest_first(api, platform_key):
    created = [ProjectFactory(slug=f"p{i:02d}") for i in range(25)]
    first = api.get("/api/v1/projects", key=platform_key).json()
    assert first["object"] == "list"
    assert len(first["data"]) == 20
    assert first["has_more"] is True
    ordered_ids = [p.pk for p in sorted(created, key=lambda p: (p.created_at, p.pk), reverse=True)]
    assert [p["id"] for p in first["data"]] == ordered_ids[:20]
    second = api.get(
        "/api/v1/projects",
        json_body={"starting_after": first["data"][-1]["id"], "limit": 10},
        key=platform_key,
    ).json()
    assert [p["id"] for p in second["data"]] == ordered_ids[20:]
    assert second["has_more"] is False


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"starting_after": "proj_nope"}, "starting_after"),
    ],
)
def test_list_rejects_bad_pagination(api, platform_key, query, param):
    response = api.get("/api/v1/projects", json_body=query, key=platform_key)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_platform_creates_and_revokes_project_keys(api, platform_key, tenant_a):
    created = api.post(f"/api/v1/projects/{tenant_a.project.pk}/api_keys", {"name": "ci"}, key=platform_key)
    assert created.status_code == 201
    body = created.json()
    assert set(body) >= {"id", "api_key", "prefix", "created_at"}
    assert body["api_key"].startswith(body["prefix"])
    assert api.get("/api/v1/project", key=body["api_key"]).status_code == 200

    revoked = api.delete(
        f"/api/v1/projects/{tenant_a.project.pk}/api_keys/{body['id']}",
        {"reason": "leaked"},
        key=platform_key,
    )
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert api.get("/api/v1/project", key=body["api_key"]).status_code == 401
    assert AuditLogEntry.objects.get(action="api_key.revoked", target_id=body["id"]).reason == "leaked"

    listed = api.get(f"/api/v1/projects/{tenant_a.project.pk}/api_keys", key=platform_key).json()
    assert {k["id"] for k in listed["data"]} == {body["id"], tenant_a.api_key.pk}
    assert all("api_key" not in k and "key_hash" not in k for k in listed["data"])


def test_revoking_a_key_of_another_project_is_404(api, platform_key, tenant_a, tenant_b):
    response = api.delete(
        f"/api/v1/projects/{tenant_a.project.pk}/api_keys/{tenant_b.api_key.pk}", key=platform_key
    )
    assert response.status_code == 404
    assert ApiKey.objects.get(pk=tenant_b.api_key.pk).revoked_at is None


def test_project_rotates_its_own_keys(api, tenant_a):
    created = api.post("/api/v1/project/api_keys", {"name": "rotation"}, key=tenant_a.key)
    assert created.status_code == 201
    new_secret = created.json()["api_key"]
    assert api.delete(f"/api/v1/project/api_keys/{tenant_a.api_key.pk}", key=new_secret).status_code == 200
    assert api.get("/api/v1/project", key=tenant_a.key).status_code == 401
    assert api.get("/api/v1/project", key=new_secret).status_code == 200


def test_own_project_shows_no_secrets(api, db):
    api_key = ApiKeyFactory(project=ProjectFactory(slug="sec", stripe_secret_key="sk_test_hidden999"))
    body = api.get("/api/v1/project", key=api_key.secret).json()
    assert "sk_test_hidden999" not in str(body)
    assert body["has_stripe_secret_key"] is True
