"""Every process entry point defaults to production settings, as a bare-metal operator starts it: `gunicorn
config.wsgi`, the ASGI applications (`uvicorn config.mcp:app` among them), `celery -A config worker` and `celery -A
config beat`, with no DJANGO_SETTINGS_MODULE and no secrets, refuse to start (SECRET_KEY is required) instead of
serving with DEBUG on, the public development SECRET_KEY and the development encryption key; with the secrets set
they run `config.settings.production`. Only `manage.py`, a developer's tool, defaults to `config.settings.local`.

Each runs in a subprocess whose environment holds nothing of Tollgate's but what the test sets.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.webhooks.workers import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FERNET_KEY = "dGVzdC1zdWl0ZS1vbmx5LWtleS1uZXZlci1pbi11c2U="
REFUSAL = "SECRET_KEY must be set in production."
WORKER = ["worker", "--pool=solo", "--without-heartbeat", "--without-gossip", "--without-mingle"]

pytestmark = pytest.mark.skipif(
    (ROOT / ".env").exists(), reason="a .env at the repository root would configure the processes under test"
)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", **extra}


def secrets_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What an operator must set: the two secrets and a database (a throwaway SQLite file here)."""
    return clean_env(
        tmp_path,
        **{
            "SECRET_KEY": "s" * 50,
            "FIELD_ENCRYPTION_KEYS": FERNET_KEY,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            **extra,
        },
    )


def run(argv: list[str], env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


class Started:
    """A long-running process (its own process group) and its combined output."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as stream:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Started]]:
    processes: list[Started] = []
    yield processes
    for process in processes:
        process.stop()


# --- without secrets: every entry point refuses -----------------------------------------------------------------
def test_gunicorn_refuses_to_start_without_a_secret_key(tmp_path):
    result = run(
        [str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{free_port()}"], clean_env(tmp_path)
    )

    assert result.returncode != 0
    assert REFUSAL in result.stderr
    assert "Booting worker" in result.stderr  # it did try: the worker, loading the app, refused
    assert "Worker failed to boot" in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        WORKER,
        ["beat", "--schedule", "{tmp}/celerybeat-schedule"],
    ],
    ids=["worker", "beat"],
)
def test_celery_refuses_to_start_without_a_secret_key(tmp_path, argv):
    argv = [part.replace("{tmp}", str(tmp_path)) for part in argv]
    result = run([str(BIN / "celery"), "-A", "config", *argv], clean_env(tmp_path))

    assert result.returncode != 0
    assert REFUSAL in result.stderr
    assert "ready." not in result.stderr
    assert "beat: Starting" not in result.stderr


@pytest.mark.parametrize("module", ["config.asgi", "config.mcp"])
def test_the_asgi_applications_refuse_to_load_without_a_secret_key(tmp_path, module):
    result = run([sys.executable, "-c", f"import {module}; print('loaded')"], clean_env(tmp_path))

    assert result.returncode != 0
    assert REFUSAL in result.stderr
    assert "loaded" not in result.stdout


# --- with them: production settings -----------------------------------------------------------------------------
SHOW = "from django.conf import settings; print(settings.SETTINGS_MODULE, settings.DEBUG, settings.SECRET_KEY[:5])"


@pytest.mark.parametrize(
    "load",
    [
        "import config.wsgi",
        "import config.asgi",
        "import config.mcp",
        # What `celery -A config` imports: the package, whose Celery app sets the default settings module.
        "import config, django; django.setup()",
    ],
    ids=["wsgi", "asgi", "mcp", "celery-app"],
)
def test_each_application_loads_production_settings(tmp_path, load):
    result = run([sys.executable, "-c", f"{load}; {SHOW}"], secrets_env(tmp_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["config.settings.production", "False", "sssss"]


def test_celery_reports_production_settings(tmp_path):
    result = run([str(BIN / "celery"), "-A", "config", "report"], secrets_env(tmp_path))

    assert result.returncode == 0, result.stderr
    assert "SETTINGS_MODULE: 'config.settings.production'" in result.stdout
    assert re.search(r"^DEBUG: False$", result.stdout, re.MULTILINE)


def _live(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/live", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_gunicorn_serves_with_production_settings(tmp_path, started):
    port = free_port()
    env = secrets_env(tmp_path, ALLOWED_HOSTS="127.0.0.1", SECURE_SSL_REDIRECT="false")
    server = Started(
        [str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        env,
        tmp_path / "gunicorn.log",
    )
    started.append(server)

    assert wait_for(lambda: _live(port), timeout=60, interval=0.2), server.output()
    missing = requests.get(f"http://127.0.0.1:{port}/no-such-page", timeout=10)
    assert missing.status_code == 404
    assert "DEBUG = True" not in missing.text  # Django's technical 404 page says so when DEBUG is on
    # Production's security headers are on (HSTS is only sent over https).
    assert missing.headers["X-Content-Type-Options"] == "nosniff"


def test_uvicorn_serves_the_mcp_server_with_production_settings(tmp_path, started):
    port = free_port()
    env = secrets_env(tmp_path, ALLOWED_HOSTS="127.0.0.1", LOG_LEVEL="INFO")
    server = Started(
        [str(BIN / "uvicorn"), "config.mcp:app", "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp_path / "uvicorn.log",
    )
    started.append(server)

    assert wait_for(lambda: _live(port), timeout=60, interval=0.2), server.output()
    refused = requests.post(f"http://127.0.0.1:{port}/mcp", json={}, timeout=10)
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "invalid_agent_key")

    # Production's log format (JSON lines) for the server's own line about the request, written once it answered.
    def logged() -> list[str]:
        return [line for line in server.output().splitlines() if "POST /mcp 401" in line]

    assert wait_for(lambda: bool(logged()), timeout=10, interval=0.1), server.output()
    line = logged()[0]
    assert json.loads(line)["level"] == "INFO", line


def _celery_started(tmp_path: Path, started: list[Started], argv: list[str], ready: str, **env: str) -> None:
    env = secrets_env(tmp_path, CELERY_BROKER_URL="memory://", LOG_LEVEL="INFO", **env)
    process = Started([str(BIN / "celery"), "-A", "config", *argv], env, tmp_path / "celery.log")
    started.append(process)

    assert wait_for(lambda: ready in process.output() or process.process.poll() is not None, timeout=60)
    assert process.process.poll() is None, process.output()
    # Production's log format (JSON lines), not local's text.
    line = next(line for line in process.output().splitlines() if ready in line)
    assert json.loads(line)["level"] == "INFO", line


def test_celery_beat_starts_with_its_secrets(tmp_path, started):
    _celery_started(
        tmp_path, started, ["beat", "--schedule", str(tmp_path / "celerybeat-schedule")], "beat: Starting"
    )


@pytest.mark.postgres
def test_a_celery_worker_starts_with_its_secrets_on_postgresql(tmp_path, started):
    from django.db import connection

    database = connection.settings_dict
    url = f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}"
    _celery_started(tmp_path, started, WORKER, "ready.", DATABASE_URL=url)


def test_a_celery_worker_refuses_sqlite(tmp_path):
    """On SQLite the named locks of core/locks.py are per process: a worker beside the web process would apply work
    with no lock between them, so it stops before consuming anything, and says why."""
    env = secrets_env(tmp_path, CELERY_BROKER_URL="memory://")
    result = run([str(BIN / "celery"), "-A", "config", *WORKER], env)

    assert result.returncode == 1
    assert "A Celery worker needs PostgreSQL (DATABASE_URL=postgres://…)" in result.stderr
    assert "ready." not in result.stderr


# --- manage.py: the developer's default --------------------------------------------------------------------------
def test_manage_py_still_defaults_to_local_settings(tmp_path):
    result = run(
        [sys.executable, "manage.py", "shell", "-c", SHOW],
        clean_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}"),
    )

    assert result.returncode == 0, result.stderr
    # (the shell first says how many objects it imported)
    assert result.stdout.strip().splitlines()[-1].split() == ["config.settings.local", "True", "djang"]
