"""The management commands of API.md's contract."""

import json
import threading
import time
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from core.management.commands.migrate_locked import _LOCK_ID
from projects.keys import hash_secret
from projects.models import ApiKey, PlatformKey, Project


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_project_json_prints_one_line_with_a_working_key(api):
    line = _run("create_project", "acme", "--name", "Acme Inc", "--json", "--redirect-host", "acme.test")
    payload = json.loads(line)
    assert set(payload) == {"id", "slug", "api_key"}
    assert payload["slug"] == "acme"
    project = Project.objects.get(pk=payload["id"])
    assert project.name == "Acme Inc"
    assert project.allowed_redirect_hosts == ["acme.test"]
    assert ApiKey.objects.get(project=project).key_hash == hash_secret(payload["api_key"])
    assert api.get("/api/v1/project", key=payload["api_key"]).json()["slug"] == "acme"


def test_create_project_with_a_taken_slug_fails_cleanly(db):
    _run("create_project", "dup", "--name", "One")
    with pytest.raises(CommandError, match="already exists"):
        _run("create_project", "dup", "--name", "Two")
    assert Project.objects.filter(slug="dup").count() == 1


def test_create_platform_key_json(api):
    payload = json.loads(_run("create_platform_key", "--json"))
    assert set(payload) == {"id", "api_key"}
    assert PlatformKey.objects.get(pk=payload["id"]).key_hash == hash_secret(payload["api_key"])
    assert api.get("/api/v1/projects", key=payload["api_key"]).status_code == 200


def test_migrate_locked_runs_migrate(db):
    out = _run("migrate_locked", "--verbosity", "1")
    assert "No migrations to apply" in out or "Waiting for the migration lock" in out or out == ""


def test_demo_setup_is_repeatable_and_prints_working_keys(api, client, tmp_path):
    credentials = str(tmp_path / "demo-credentials.json")
    first = json.loads(_run("demo_setup", "--json", "--credentials", credentials))
    second = json.loads(_run("demo_setup", "--json", "--credentials", credentials))
    assert Project.objects.filter(slug="demo").count() == 1
    assert second["api_key"] == first["api_key"]  # kept (tests/docs/test_demo_setup.py has the details)
    assert api.get("/api/v1/project", key=second["api_key"]).json()["slug"] == "demo"
    assert api.get("/api/v1/projects", key=second["platform_key"]).status_code == 200
    assert client.login(username=second["admin_username"], password=second["admin_password"])
    assert client.get("/admin/").status_code == 200


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's advisory lock")
def test_a_replica_waiting_for_the_migration_lock_holds_no_snapshot(db):
    """Another replica migrating (it holds the lock) may build an index CONCURRENTLY, which waits for every older
    snapshot: a waiter blocked inside `pg_advisory_lock` would hold one, and the two would wait for each other."""
    params = connection.get_connection_params()
    holder = psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", [_LOCK_ID])
    out = StringIO()

    def wait_and_migrate() -> None:
        try:
            call_command("migrate_locked", stdout=out)
        finally:
            connection.close()  # this thread's own connection

    waiter = threading.Thread(target=wait_and_migrate, daemon=True)
    try:
        waiter.start()
        samples = []
        for _ in range(12):
            time.sleep(0.25)
            samples += holder.execute(
                "SELECT state, wait_event_type, backend_xmin IS NULL FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE %s",
                ["%advisory_lock%"],
            ).fetchall()
        assert samples  # the waiter was seen asking
        assert all(wait != "Lock" for _, wait, _ in samples)  # never blocked on the lock …
        assert any(
            state == "idle" and no_snapshot for state, _, no_snapshot in samples
        )  # … idle between asks
        assert waiter.is_alive()  # still waiting: the lock is held
    finally:
        holder.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_ID])
        holder.close()
        waiter.join(30)
    assert not waiter.is_alive()
    assert "Waiting for the migration lock" in out.getvalue()
