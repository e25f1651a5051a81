"""Production settings refuse to start without their secrets; the embedded defaults need none."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FERNET_KEY = "dGVzdC1zdWl0ZS1vbmx5LWtleS1uZXZlci1pbi11c2U="


def _setup(settings_module: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "FIELD_ENCRYPTION_KEYS"}}
    clean.update(env, DJANGO_SETTINGS_MODULE=settings_module)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FIELD_ENCRYPTION_KEYS": FERNET_KEY}, "SECRET_KEY must be set in production."),
        (
            {"SECRET_KEY": "s" * 50, "FIELD_ENCRYPTION_KEYS": FERNET_KEY, "DEBUG": "true"},
            "DEBUG must be off in production.",
        ),
        ({"SECRET_KEY": "s" * 50}, "FIELD_ENCRYPTION_KEYS must be set in production"),
    ],
)
def test_production_refuses_to_start(env, message):
    result = _setup("config.settings.production", **env)
    assert result.returncode != 0
    assert message in result.stderr
    assert "started" not in result.stdout


def test_production_starts_with_its_secrets():
    result = _setup("config.settings.production", SECRET_KEY="s" * 50, FIELD_ENCRYPTION_KEYS=FERNET_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"


@pytest.mark.parametrize(("days", "starts"), [("30", False), ("1", False), ("31", True), ("0", True)])
def test_a_webhook_retention_shorter_than_stripes_window_is_refused_at_start(days, starts):
    """Stripe can send an event again for 30 days: its stored row must outlive that (0 keeps everything)."""
    result = _setup("config.settings.local", WEBHOOK_RETENTION_DAYS=days)
    assert (result.returncode == 0) is starts, result.stderr
    if not starts:
        assert "WEBHOOK_RETENTION_DAYS must be 0 (keep everything) or at least 31" in result.stderr


def test_atomic_requests_are_off():
    from django.conf import settings

    assert settings.DATABASES["default"]["ATOMIC_REQUESTS"] is False


SQLITE_PROBE = (
    "import json, django; django.setup(); from django.conf import settings; from django.db import connection; "
    "options = settings.DATABASES['default'].get('OPTIONS', {}); "
    "probe = {} if connection.vendor != 'sqlite' or 'PROBE' not in __import__('os').environ else {"
    "'journal_mode': connection.cursor().execute('PRAGMA journal_mode').fetchone()[0], "
    "'busy_timeout': connection.cursor().execute('PRAGMA busy_timeout').fetchone()[0], "
    "'begin': connection.transaction_mode}; "
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'], 'options': options, **probe}))"
)
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 30.0,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
}


def _probe(tmp_path, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL"}}
    clean.update(env, DJANGO_SETTINGS_MODULE="config.settings.local")
    result = subprocess.run(
        [sys.executable, "-c", SQLITE_PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_default_sqlite_database_is_wal_with_a_busy_timeout_and_immediate_transactions(tmp_path):
    # No DATABASE_URL: the embedded default (not opened here: it is the developer's var/ file).
    assert _probe(tmp_path) == {"engine": "django.db.backends.sqlite3", "options": SQLITE_OPTIONS}
    # DATABASE_URL=sqlite:///…: the same, and an opened connection has them.
    opened = _probe(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", PROBE="1")
    assert opened == {
        "engine": "django.db.backends.sqlite3",
        "options": SQLITE_OPTIONS,
        "journal_mode": "wal",
        "busy_timeout": 30000,
        "begin": "IMMEDIATE",
    }
    # An option in the URL wins; PostgreSQL gets none of them.
    assert _probe(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}?timeout=5")["options"] == {
        **SQLITE_OPTIONS,
        "timeout": 5,
    }
    # PostgreSQL: none of SQLite's options; TCP keepalives, unless the URL sets its own.
    # The server's own keepalives are asked for in the startup options (a vanished worker host's sessions end).
    keepalives = {
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 60000,
        "options": "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3 "
        "-c tcp_user_timeout=60000",
    }
    # Parameters bound by the server, and a session's hot statements prepared.
    prepared = {"server_side_binding": True, "prepare_threshold": 5}
    assert _probe(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:5432/tollgate") == {
        "engine": "core.backends.postgresql",
        "options": {**keepalives, **prepared},
    }
    assert (
        _probe(
            tmp_path,
            DATABASE_URL="postgres://postgres@127.0.0.1:5432/tollgate",
            DATABASE_PREPARED_STATEMENTS="false",
        )["options"]
        == keepalives
    )
    # The threshold is psycopg's own default, fixed: setting it changes nothing.
    assert _probe(
        tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:5432/tollgate", DATABASE_PREPARE_THRESHOLD="2"
    )["options"] == {**keepalives, **prepared}
    # Behind a pooler that refuses startup options: ours only.
    assert _probe(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/tollgate",
        DATABASE_SERVER_KEEPALIVES="false",
    )["options"] == {
        **{name: value for name, value in keepalives.items() if name != "options"},
        **prepared,
    }
    # Shorter, both ends alike.
    assert _probe(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/tollgate",
        DATABASE_KEEPALIVE_IDLE_SECONDS="4",
        DATABASE_KEEPALIVE_INTERVAL_SECONDS="2",
        DATABASE_KEEPALIVE_COUNT="2",
        DATABASE_PREPARED_STATEMENTS="false",
    )["options"] == {
        "keepalives": 1,
        "keepalives_idle": 4,
        "keepalives_interval": 2,
        "keepalives_count": 2,
        "tcp_user_timeout": 8000,
        "options": "-c tcp_keepalives_idle=4 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=2 "
        "-c tcp_user_timeout=8000",
    }
    assert _probe(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:5432/tollgate?keepalives_idle=5")[
        "options"
    ] == {**keepalives, **prepared, "keepalives_idle": 5}
