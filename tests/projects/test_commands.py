"""The management commands of API.md's contract."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

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
