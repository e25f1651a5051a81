"""What the operator is told to type works where they type it (issue #49, point 13): the back office's "HTTPS
required" page under compose, the RabbitMQ set-up in docs/operations.md "Choosing the broker", and the secrets'
one-liners in "First start", which run on a host that has Python but none of Tollgate's packages."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = (ROOT / "docs/operations.md").read_text()


def _section(title: str) -> str:
    start = OPERATIONS.index(title)
    end = OPERATIONS.find("\n#", start + len(title))
    return OPERATIONS[start : end if end != -1 else None]


@pytest.mark.django_db
@override_settings(CSRF_COOKIE_SECURE=True, SESSION_COOKIE_SECURE=True)
def test_the_https_page_says_that_compose_applies_insecure_http_with_up_not_restart() -> None:
    page = Client().get("/admin/login/")

    assert page.status_code == 403
    text = " ".join(page.content.decode().split())
    # `docker compose restart web` keeps the container's old environment: only `up -d` recreates it with .env's.
    assert (
        "<code>INSECURE_HTTP=true</code> in <code>.env</code>, then <code>docker compose up -d web</code>"
        in text
    )
    assert "<code>docker compose restart web</code> keeps the old environment" in text
    # Compose's own way to TLS: the `tls` profile's proxy.
    assert "<code>docker compose --profile tls up -d</code>" in text
    assert 'name="password"' not in text


def test_the_operations_guide_says_restart_does_not_apply_a_changed_env() -> None:
    text = " ".join(OPERATIONS.split())
    assert "`docker compose up -d web`" in text
    assert "`docker compose restart web` keeps the environment the container was created with" in text


def test_choosing_rabbitmq_gives_the_rabbitmqctl_lines_for_the_vhost_user_and_permissions() -> None:
    section = _section("### Choosing the broker")
    lines = re.findall(r"^rabbitmqctl .*$", section, re.M)
    assert lines == [
        "rabbitmqctl add_vhost tollgate",
        "rabbitmqctl add_user tollgate 'a-long-random-password'",
        "rabbitmqctl set_permissions -p tollgate tollgate '.*' '.*' '.*'",
    ]
    assert (
        "CELERY_BROKER_URL=amqp://tollgate:a-long-random-password@rabbitmq.internal:5672/tollgate" in section
    )


def test_the_secrets_one_liners_need_only_python_s_standard_library() -> None:
    """Each one-liner of "First start" runs with `python3 -S` (no site-packages: no cryptography, no Django), and
    what it prints is what production settings accept."""
    block = _section("Generate the secrets with")
    lines = re.findall(r'^python3 -c "([^"]+)"\s+# (\w+)$', block, re.M)
    assert [name for _, name in lines] == ["SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "POSTGRES_PASSWORD"]
    printed = {}
    for code, name in lines:
        result = subprocess.run(
            [sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True, timeout=30
        )
        printed[name] = result.stdout.strip()
    assert len(printed["SECRET_KEY"]) >= 50
    # A Fernet key: 32 random bytes, URL-safe base64.
    from cryptography.fernet import Fernet

    key = printed["FIELD_ENCRYPTION_KEYS"]
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert Fernet(key).decrypt(Fernet(key).encrypt(b"x")) == b"x"
    # Letters and digits only: it goes into DATABASE_URL unquoted.
    assert re.fullmatch(r"[0-9a-f]{48}", printed["POSTGRES_PASSWORD"])
