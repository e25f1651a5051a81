"""The README's table of environment variables (issue #50 point 7: an operator sizes Tollgate without
arithmetic): short, true both ways (every variable it documents is read, every variable the settings read is
documented), and the variables fixed since are ignored when set, as docs/operations.md's upgrade note says."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE = [*sorted((ROOT / "config").rglob("*.py"))]

# The per-tenant shares, gone with the fair claim in SQL (issue #50 point 3): nothing to size.
FAIRNESS = {
    "STRIPE_EVENT_TASKS_POOL",
    "STRIPE_EVENT_TASKS_PER_PROJECT",
    "OUTBOUND_WEBHOOK_DELIVERIES_POOL",
    "OUTBOUND_WEBHOOK_DELIVERIES_PER_ENDPOINT",
}
# Read from the environment without being a setting an operator sets: `make demo DEMO_VAR=dir`'s directory, read
# by development settings only (the README's demo section documents it).
NOT_SETTINGS = {"DEMO_VAR"}

# Each variable fixed by issue #50 point 7, set to something else, and the setting it used to change, as Python
# that prints its value once Django is set up (`s` is django.conf.settings): it keeps the default it had.
FIXED = {
    "SQLITE_BUSY_TIMEOUT_SECONDS": ("s.DATABASES['default']['OPTIONS']['timeout']", 30.0),
    "DATABASE_PREPARE_THRESHOLD": ("s.DATABASE_PREPARE_THRESHOLD", 5),
    "OUTBOUND_WEBHOOK_TIMEOUT_SECONDS": ("s.OUTBOUND_WEBHOOK_TIMEOUT_SECONDS", 10.0),
    "CACHE_KEY_PREFIX": ("s.CACHES['default']['KEY_PREFIX']", "tollgate"),
    "CACHE_EPOCH_CHECK_SECONDS": ("s.CACHE_EPOCH_CHECK_SECONDS", 1.0),
    "CELERY_DB_REUSE_MAX": ("s.CELERY_DB_REUSE_MAX", 1000),
    "STRIPE_METER_EVENTS_PER_SECOND": ("s.STRIPE_METER_EVENTS_PER_SECOND", 1000),
    "API_KEY_TOUCH_INTERVAL_SECONDS": ("s.API_KEY_TOUCH_INTERVAL_SECONDS", 60),
    "AUTH_CACHE_SECONDS": ("s.AUTH_CACHE_SECONDS", 300),
    "AUTH_LOCAL_CACHE_SECONDS": ("s.AUTH_LOCAL_CACHE_SECONDS", 1.0),
    "IDEMPOTENCY_LOCK_TIMEOUT_SECONDS": ("s.IDEMPOTENCY_LOCK_TIMEOUT.total_seconds()", 300.0),
    "IDEMPOTENCY_KEY_TTL_HOURS": ("s.IDEMPOTENCY_KEY_TTL.total_seconds()", 86_400.0),
    "OUTBOUND_WEBHOOK_SECRET_OVERLAP_SECONDS": ("s.OUTBOUND_WEBHOOK_SECRET_OVERLAP_SECONDS", 86_400),
    "OUTBOUND_WEBHOOK_DISABLE_AFTER_HOURS": ("s.OUTBOUND_WEBHOOK_DISABLE_AFTER_HOURS", 24),
    "ENTITLEMENT_CHANGES_RATE_PER_MINUTE": ("s.ENTITLEMENT_CHANGES_RATE_PER_MINUTE", 6000),
    "USAGE_PARTITIONS_AHEAD": ("s.USAGE_PARTITIONS_AHEAD", 3),
    "API_MAX_BODY_BYTES": ("s.API_MAX_BODY_BYTES", 1_048_576),
    "DEMO_PAGES": ("s.DEMO_PAGES", False),
}


def _documented() -> list[str]:
    """Every variable named in the first column of the README's table, in order (a row may name several)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names = []
    for row in re.finditer(r"^\| (`[^|]+`) \|", section, re.M):
        names += re.findall(r"`([A-Z][A-Z0-9_]*)`", row.group(1))
    return names


def _read_by_settings() -> set[str]:
    """The variables read from the environment in config/: `env(…)`, `env.int(…)`, `os.environ…`."""
    read = set()
    for path in CODE:
        text = path.read_text()
        read |= set(re.findall(r"""\benv(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""", text))
        read |= set(
            re.findall(r"""os\.environ(?:\.get|\.setdefault)?[(\[]\s*["']([A-Z][A-Z0-9_]*)["']""", text)
        )
    return read


def test_the_readme_documents_at_most_45_variables() -> None:
    documented = _documented()
    assert len(documented) == len(set(documented)), "a variable documented twice"
    assert len(documented) <= 45, documented  # issue #50's bound


def test_the_fairness_variables_are_gone_and_named_by_the_upgrade_note() -> None:
    assert sorted(FAIRNESS & (set(_documented()) | _read_by_settings())) == []
    operations = (ROOT / "docs/operations.md").read_text()
    note = operations.split("\n## Upgrading: the fair claim in SQL\n", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"`([A-Z][A-Z0-9_]*)`", note)) >= FAIRNESS


def test_every_documented_variable_is_read_and_every_variable_read_is_documented() -> None:
    documented = set(_documented())
    read = _read_by_settings() - NOT_SETTINGS
    assert len(read) > 30  # the pattern still finds the settings' reads
    assert sorted(documented - read) == [], "documented but never read"
    assert sorted(read - documented) == [], "read but not in the README's table"


def test_the_fixed_variables_are_neither_documented_nor_read() -> None:
    assert sorted(set(FIXED) & set(_documented())) == []
    assert sorted(set(FIXED) & _read_by_settings()) == []


def test_the_upgrade_note_names_the_fixed_variables() -> None:
    operations = (ROOT / "docs/operations.md").read_text()
    note = re.search(r"^- \*\*Eighteen variables are now fixed\*\*.*?(?=^- |^## )", operations, re.M | re.S)
    assert note, "docs/operations.md lacks the upgrade note on the fixed variables"
    named = set(re.findall(r"`([A-Z][A-Z0-9_]*)`", note.group(0))) - {"DEBUG", "REDIS_URL", "DATABASE_URL"}
    assert named == set(FIXED)
    assert len(FIXED) == 18


def test_setting_a_fixed_variable_has_no_effect(tmp_path: Path) -> None:
    """Each fixed variable set to another value in the environment of development settings (DEBUG off, a Redis
    cache configured but never reached, SQLite): every setting keeps its default."""
    values = ", ".join(f"{name!r}: {expression}" for name, (expression, _) in FIXED.items())
    probe = f"import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({{{values}}}))"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DEBUG"}}
    env.update(dict.fromkeys(FIXED, "7"))
    env.update(
        CACHE_KEY_PREFIX="another-install",
        DEMO_PAGES="true",
        DEBUG="false",
        REDIS_URL="redis://redis.invalid:6379/0",
        DEMO_VAR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="config.settings.local",
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        name: value for name, (_, value) in FIXED.items()
    }
