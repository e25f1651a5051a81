"""CI runs the PostgreSQL suite in two halves at once on one server; a fifty-thread race in each half at once
asked the server for more connections than it has, and a consumer got "too many clients already" (CI at stop 70).
tests/connection_races.py lets one race at a time run on the server, whatever the database; this test holds the
gate to that, and every many-connection race to the gate."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.db import connection

from tests.connection_races import RACE_LOCK_KEY, one_race_at_a_time

ROOT = Path(__file__).resolve().parents[2]

# Another process on the same server (the other half, a database of its own) asks for the race lock without
# waiting: it answers whether it got it.
_OTHER_SUITE = textwrap.dedent(
    """
    import sys
    import psycopg
    with psycopg.connect(sys.argv[1], autocommit=True) as other:
        print(other.execute("SELECT pg_try_advisory_lock(%s)", [int(sys.argv[2])]).fetchone()[0])
    """
)


def _other_suite_gets_the_lock() -> bool:
    settings = connection.settings_dict
    dsn = (
        f"host={settings['HOST'] or '127.0.0.1'} port={settings['PORT'] or 5432} "
        f"user={settings['USER'] or 'postgres'} dbname=postgres"
    )
    if settings.get("PASSWORD"):
        dsn += f" password={settings['PASSWORD']}"
    answer = subprocess.run(
        [sys.executable, "-c", _OTHER_SUITE, dsn, str(RACE_LOCK_KEY)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return answer.stdout.strip() == "True"


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_race_holds_the_servers_race_lock_against_every_other_suite_and_frees_it_after():
    with one_race_at_a_time():
        assert _other_suite_gets_the_lock() is False
    assert _other_suite_gets_the_lock() is True


def test_every_race_of_many_connections_runs_through_the_gate():
    """The suite's race helpers and the races that start their own threads or client processes by the score."""
    gated = {
        "tests/entitlements/test_consume.py": 1,
        "tests/entitlements/test_usage_partitions.py": 1,
        "tests/webhooks/test_intake.py": 1,
        "tests/clients/test_leases.py": 2,
    }
    for path, count in gated.items():
        text = (ROOT / path).read_text()
        assert len(re.findall(r"with one_race_at_a_time\(\):", text)) == count, path
