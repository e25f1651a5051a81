"""`make demo` run again keeps the demo's keys and admin password (they live in a private local file), says so
loudly when it must replace one, and follows HOST and PORT: the allowed redirect hosts and every printed URL."""

import io
import json
import re
import stat

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from core.models import AuditLogEntry
from projects.models import ApiKey, PlatformKey, Project


def demo_setup(credentials, *args: str) -> str:
    out = io.StringIO()
    call_command("demo_setup", "--credentials", str(credentials), *args, stdout=out)
    return out.getvalue()


def demo_json(credentials, base_url: str = "http://127.0.0.1:8000") -> dict:
    return json.loads(demo_setup(credentials, "--base-url", base_url, "--json").strip().splitlines()[-1])


def authenticates(api, run: dict) -> tuple[int, int, bool]:
    return (
        api.get("/api/v1/project", key=run["api_key"]).status_code,
        api.get("/api/v1/projects", key=run["platform_key"]).status_code,
        authenticate(username=run["admin_username"], password=run["admin_password"]) is not None,
    )


@pytest.fixture
def credentials(tmp_path):
    return tmp_path / "var" / "demo-credentials.json"


def test_a_second_run_keeps_the_keys_and_the_admin_password(api, credentials):
    first = demo_json(credentials)
    second = demo_json(credentials)
    assert (second["api_key"], second["platform_key"], second["admin_password"]) == (
        first["api_key"],
        first["platform_key"],
        first["admin_password"],
    )
    assert (first["rotated"], second["rotated"]) == ([], [])
    assert authenticates(api, second) == (200, 200, True)
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 1
    assert PlatformKey.objects.filter(revoked_at__isnull=True).count() == 1
    assert not AuditLogEntry.objects.filter(action__contains="revoked").exists()
    stored = json.loads(credentials.read_text())
    assert (stored["api_key"], stored["platform_key"], stored["admin_password"]) == (
        first["api_key"],
        first["platform_key"],
        first["admin_password"],
    )
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600

    text = demo_setup(credentials, "--base-url", "http://127.0.0.1:8000")
    assert "Keys and admin password as on the last run" in text
    assert "NEW" not in text


def test_a_key_that_no_longer_verifies_is_replaced_loudly(api, credentials):
    first = demo_json(credentials)
    ApiKey.objects.filter(revoked_at__isnull=True).update(revoked_at="2026-01-01T00:00:00Z")

    text = demo_setup(credentials, "--base-url", "http://127.0.0.1:8000")
    assert "!! NEW PROJECT KEY:" in text
    second = json.loads(credentials.read_text())
    assert second["api_key"] != first["api_key"]
    assert f"Project key:    {second['api_key']}" in text
    assert (second["platform_key"], second["admin_password"]) == (
        first["platform_key"],
        first["admin_password"],
    )
    assert authenticates(api, second) == (200, 200, True)
    assert api.get("/api/v1/project", key=first["api_key"]).status_code == 401


def test_a_lost_credentials_file_rotates_everything_and_says_so(api, credentials):
    first = demo_json(credentials)
    credentials.unlink()
    second = demo_json(credentials)
    assert second["rotated"] == ["project key", "platform key", "admin password"]
    assert authenticates(api, second) == (200, 200, True)
    assert authenticates(api, first) == (401, 401, False)


def test_the_port_and_host_follow_make_demo(api, credentials):
    first = demo_json(credentials)
    assert first["allowed_redirect_hosts"] == ["127.0.0.1:8000", "localhost:8000", "app.example.com"]

    text = demo_setup(credentials, "--base-url", "http://127.0.0.1:8123")
    project = Project.objects.get(slug="demo")
    assert project.allowed_redirect_hosts == ["127.0.0.1:8123", "localhost:8123", "app.example.com"]
    stored = json.loads(credentials.read_text())
    assert stored["api_key"] == first["api_key"]
    urls = re.findall(r"https?://[^\s'\"]+", text)
    assert len(urls) == 6  # API docs, admin, readiness, pricing page, and the two curls
    assert [url for url in urls if not url.startswith("http://127.0.0.1:8123/")] == []
    assert authenticates(api, stored) == (200, 200, True)
    change = AuditLogEntry.objects.get(action="project.updated")
    assert change.after["allowed_redirect_hosts"] == project.allowed_redirect_hosts

    demo_setup(credentials, "--base-url", "http://demo.test:9000")
    project.refresh_from_db()
    assert project.allowed_redirect_hosts == ["demo.test:9000", "app.example.com"]


def test_the_mcp_server_is_printed_where_make_demo_serves_it(api, credentials):
    text = demo_setup(
        credentials, "--base-url", "http://127.0.0.1:8123", "--mcp-url", "http://127.0.0.1:8124/mcp"
    )
    assert re.search(r"^MCP server: +http://127\.0\.0\.1:8124/mcp ", text, re.MULTILINE), text
    assert "MCP server" not in demo_setup(credentials, "--base-url", "http://127.0.0.1:8123")
