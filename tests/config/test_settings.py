"""Production settings refuse to start without their secrets; the embedded defaults need none."""

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


def test_atomic_requests_are_off():
    from django.conf import settings

    assert settings.DATABASES["default"]["ATOMIC_REQUESTS"] is False
