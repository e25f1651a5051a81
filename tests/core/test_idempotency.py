"""Idempotency-Key on unsafe methods: replay, reuse, in-use, what is not stored, expiry and the purge."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone

from core.idempotency import request_fingerprint
from core.models import AuditLogEntry, IdempotencyKey
from core.tasks import idempotency_keys_purge
from projects.models import ApiKey, Project
from tests.core import urls as test_urls


def _create(api, platform_key, body, key="idem-1"):
    return api.post("/api/v1/projects", body, key=platform_key, headers={"Idempotency-Key": key})


def test_replay_returns_the_identical_response_and_creates_nothing(api, platform_key):
    first = _create(api, platform_key, {"slug": "once", "name": "Once"})
    assert first.status_code == 201
    counts = (Project.objects.count(), ApiKey.objects.count(), AuditLogEntry.objects.count())
    # Same body with other key order and whitespace is the same request.
    second = api.request(
        "POST",
        "/api/v1/projects",
        data='{ "name": "Once",   "slug": "once" }',
        key=platform_key,
        headers={"Idempotency-Key": "idem-1"},
    )
    assert second.status_code == 201
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert (Project.objects.count(), ApiKey.objects.count(), AuditLogEntry.objects.count()) == counts


def test_same_key_with_another_body_is_409_and_creates_nothing(api, platform_key):
    _create(api, platform_key, {"slug": "once", "name": "Once"})
    before = Project.objects.count()
    response = _create(api, platform_key, {"slug": "twice", "name": "Twice"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Project.objects.count() == before
    assert not Project.objects.filter(slug="twice").exists()


def test_same_key_on_another_path_is_409(api, platform_key, tenant_a):
    _create(api, platform_key, {"slug": "once", "name": "Once"})
    response = api.post(
        f"/api/v1/projects/{tenant_a.project.pk}/api_keys",
        {},
        key=platform_key,
        headers={"Idempotency-Key": "idem-1"},
    )
    assert response.status_code == 409
    assert ApiKey.objects.filter(project=tenant_a.project).count() == 1


def test_keys_are_scoped_to_the_caller(api, tenant_a, tenant_b):
    headers = {"Idempotency-Key": "shared-name"}
    a = api.post("/api/v1/project/api_keys", {"name": "x"}, key=tenant_a.key, headers=headers)
    b = api.post("/api/v1/project/api_keys", {"name": "x"}, key=tenant_b.key, headers=headers)
    assert a.status_code == b.status_code == 201
    assert a.json()["project"] == tenant_a.project.pk
    assert b.json()["project"] == tenant_b.project.pk
    assert "Idempotent-Replayed" not in b


def test_key_in_use_is_409_and_not_stored(api, platform_key):
    from projects.authentication import principal_for_secret

    owner = principal_for_secret(platform_key).idempotency_owner
    same_request = RequestFactory().post(
        "/api/v1/projects", data='{"slug": "busy", "name": "Busy"}', content_type="application/json"
    )
    IdempotencyKey.objects.create(
        owner=owner,
        key="busy",
        method="POST",
        path="/api/v1/projects",
        fingerprint=request_fingerprint(same_request),
        created_at=timezone.now(),
        locked_at=timezone.now(),
    )
    response = _create(api, platform_key, {"slug": "busy", "name": "Busy"}, key="busy")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert not Project.objects.filter(slug="busy").exists()
    assert IdempotencyKey.objects.get(owner=owner, key="busy").status == "in_progress"


def _abandoned(platform_key, body):
    """A claim of `body` whose process died ten minutes ago (past the lock timeout)."""
    from projects.authentication import principal_for_secret

    owner = principal_for_secret(platform_key).idempotency_owner
    long_ago = timezone.now() - timedelta(minutes=10)
    request = RequestFactory().post("/api/v1/projects", data=body, content_type="application/json")
    return IdempotencyKey.objects.create(
        owner=owner,
        key="dead",
        method="POST",
        path="/api/v1/projects",
        fingerprint=request_fingerprint(request),
        created_at=long_ago,
        locked_at=long_ago,
    )


def test_abandoned_claim_is_taken_over_by_its_retry(api, platform_key):
    claim = _abandoned(platform_key, '{"slug": "alive", "name": "Alive"}')
    response = _create(api, platform_key, {"slug": "alive", "name": "Alive"}, key="dead")
    assert response.status_code == 201
    taken = IdempotencyKey.objects.get(pk=claim.pk)
    assert taken.status == "completed"
    # The same operation: its first claim's time (its identity) is kept.
    assert taken.created_at == claim.created_at


def test_abandoned_claim_of_another_request_is_409_reused(api, platform_key):
    claim = _abandoned(platform_key, '{"slug": "first", "name": "First"}')
    response = _create(api, platform_key, {"slug": "other", "name": "Other"}, key="dead")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert not Project.objects.filter(slug__in=["first", "other"]).exists()
    assert IdempotencyKey.objects.get(pk=claim.pk).status == "in_progress"


def test_4xx_answers_are_stored_and_replayed(api, platform_key):
    first = _create(api, platform_key, {"slug": "bad slug", "name": "x"}, key="bad")
    second = _create(api, platform_key, {"slug": "bad slug", "name": "x"}, key="bad")
    assert first.status_code == second.status_code == 400
    assert second["Idempotent-Replayed"] == "true"


@pytest.mark.urls("tests.core.urls")
@pytest.mark.parametrize("fail", ["500", "503"])
def test_5xx_answers_are_not_stored_so_a_retry_runs_again(api, tenant_a, fail):
    test_urls.CALLS.clear()
    headers = {"Idempotency-Key": f"retry-{fail}"}
    first = api.post(f"/api/v1/_test/fail?fail={fail}", {}, key=tenant_a.key, headers=headers)
    assert first.status_code == int(fail)
    # Kept as `failed` with no answer: free for a retry, which continues the same operation.
    record = IdempotencyKey.objects.get(key=f"retry-{fail}")
    assert (record.status, record.response_status, record.locked_at) == ("failed", None, None)
    retry = api.post(f"/api/v1/_test/fail?fail={fail}", {}, key=tenant_a.key, headers=headers)
    assert retry.status_code == int(fail)
    assert "Idempotent-Replayed" not in retry
    assert len(test_urls.CALLS) == 2


@pytest.mark.urls("tests.core.urls")
def test_unexpected_error_is_a_500_envelope_without_details(api, tenant_a):
    response = api.post("/api/v1/_test/fail?fail=500", {}, key=tenant_a.key)
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "type": "api_error",
            "code": "internal_error",
            "message": "An unexpected error occurred.",
            "param": None,
        }
    }
    assert b"boom" not in response.content


@pytest.mark.urls("tests.core.urls")
def test_business_409_is_stored(api, tenant_a):
    test_urls.CALLS.clear()
    headers = {"Idempotency-Key": "conflict"}
    api.post("/api/v1/_test/fail?fail=409", {}, key=tenant_a.key, headers=headers)
    replay = api.post("/api/v1/_test/fail?fail=409", {}, key=tenant_a.key, headers=headers)
    assert replay.status_code == 409
    assert replay["Idempotent-Replayed"] == "true"
    assert len(test_urls.CALLS) == 1


def test_overlong_key_is_400(api, platform_key):
    response = _create(api, platform_key, {"slug": "x", "name": "x"}, key="k" * 256)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Idempotency-Key"
    assert not Project.objects.filter(slug="x").exists()


def test_expired_key_is_a_new_request(api, platform_key):
    _create(api, platform_key, {"slug": "old", "name": "Old"}, key="k")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    response = _create(api, platform_key, {"slug": "new", "name": "New"}, key="k")
    assert response.status_code == 201
    assert Project.objects.filter(slug="new").exists()


def test_purge_task_deletes_keys_older_than_a_day(api, platform_key):
    _create(api, platform_key, {"slug": "a", "name": "A"}, key="old")
    _create(api, platform_key, {"slug": "b", "name": "B"}, key="fresh")
    IdempotencyKey.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=24, seconds=1)
    )
    assert idempotency_keys_purge.delay().get() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_have_exactly_one_effect(platform_key):
    from django.test import Client

    barrier = threading.Barrier(4)
    results: list[int] = []

    def call() -> None:
        client = Client()
        barrier.wait()
        response = client.post(
            "/api/v1/projects",
            data='{"slug": "race", "name": "Race"}',
            content_type="application/json",
            headers={"Authorization": f"Bearer {platform_key}", "Idempotency-Key": "race"},
        )
        results.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Project.objects.filter(slug="race").count() == 1
    assert ApiKey.objects.filter(project__slug="race").count() == 1
    assert results.count(201) >= 1
    assert set(results) <= {201, 409}


def _stored_body(key: str) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute("SELECT response_body FROM core_idempotencykey WHERE key = %s", [key])
        (raw,) = cursor.fetchone()
    return bytes(raw)


@pytest.mark.parametrize(
    ("path", "secret_field", "caller"),
    [
        ("/api/v1/projects", "api_key", "platform"),
        ("/api/v1/project/api_keys", "api_key", "tenant"),
        ("/api/v1/agent_keys", "agent_key", "tenant"),
    ],
)
def test_a_secret_shown_once_is_kept_for_its_replay_only_encrypted(
    api, platform_key, tenant_a, path, secret_field, caller
):
    # The answer that carries a new key's secret is kept a day for a retry of the request: encrypted at rest (the
    # database never holds the secret in the clear), and the replay answers the same secret.
    key = platform_key if caller == "platform" else tenant_a.key
    body = {"slug": "kept", "name": "Kept"} if caller == "platform" else {"name": "kept"}
    first = api.post(path, body, key=key, headers={"Idempotency-Key": "secret-once"})
    assert first.status_code == 201
    secret = first.json()[secret_field]
    assert secret.startswith(("tg_sk_", "tg_ak_"))
    raw = _stored_body("secret-once")
    assert secret.encode() not in raw
    assert raw.startswith(b"gAAAA")  # a Fernet token
    replay = api.post(path, body, key=key, headers={"Idempotency-Key": "secret-once"})
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.content == first.content
    assert replay.json()[secret_field] == secret


def test_an_answer_stored_in_the_clear_before_the_upgrade_is_replayed_as_it_is(api, platform_key):
    _create(api, platform_key, {"slug": "older", "name": "Older"}, key="older")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE core_idempotencykey SET response_body = %s WHERE key = 'older'", [b'{"kept": "as is"}']
        )
    replay = _create(api, platform_key, {"slug": "older", "name": "Older"}, key="older")
    assert replay.status_code == 201
    assert replay.json() == {"kept": "as is"}
    assert Project.objects.filter(slug="older").count() == 1
