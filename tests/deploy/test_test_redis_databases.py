"""The suite touches only the Redis databases it is given (issue #49, point 14): REDIS_URL's, and the real
workers' broker named in full by TOLLGATE_TEST_BROKER_URL. It derived the broker from REDIS_URL's server and
`TOLLGATE_TEST_BROKER_DB` (10 by default) and flushed it: on a shared Redis, another suite's broker.
tests/redis_databases.py holds the rule; this test holds the suite to it."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from tests.e2e import convergence
from tests.redis_databases import flush, given_broker_url
from tests.webhooks import workers

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def given_only_redis_url(monkeypatch: pytest.MonkeyPatch) -> str:
    """REDIS_URL given on a port nobody listens on (a flush that connected would fail with a connection error),
    the old variable set, the broker not given."""
    url = f"redis://127.0.0.1:{_closed_port()}/4"
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("TOLLGATE_TEST_BROKER_DB", "10")
    monkeypatch.delenv("TOLLGATE_TEST_BROKER_URL", raising=False)
    return url


def test_without_a_broker_url_no_broker_is_derived_and_the_worker_tests_skip(
    given_only_redis_url: str,
) -> None:
    assert given_broker_url() is None
    assert convergence.broker_url() is None
    with pytest.raises(pytest.skip.Exception, match="TOLLGATE_TEST_BROKER_URL"):
        workers.broker_url()


def test_a_database_not_given_is_never_flushed(given_only_redis_url: str) -> None:
    server = given_only_redis_url.rsplit("/", 1)[0]
    for url in (f"{server}/10", f"{server}/0", f"{server}/14"):
        with pytest.raises(AssertionError, match="not given"):
            flush(
                url
            )  # refused before any connection: the port is closed, so connecting would raise otherwise


def test_the_broker_is_used_as_given(given_only_redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = f"redis://127.0.0.1:{_closed_port()}/7"
    monkeypatch.setenv("TOLLGATE_TEST_BROKER_URL", broker)
    assert workers.broker_url() == broker
    assert convergence.broker_url() == broker


def test_no_test_flushes_redis_or_names_a_database_itself() -> None:
    """Every emptying goes through tests/redis_databases.flush; nothing reads TOLLGATE_TEST_BROKER_DB any more."""
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if path.name == "redis_databases.py" or path == Path(__file__):
            continue
        text = path.read_text()
        for pattern in (r"\.flushdb\(", r"\.flushall\(", r"TOLLGATE_TEST_BROKER_DB", r'"FLUSHDB"|"FLUSHALL"'):
            if re.search(pattern, text, re.I):
                offenders.append(f"{path.relative_to(ROOT)}: {pattern}")
    assert offenders == []
    for name in (".ci/run", "Makefile", "README.md"):
        assert "TOLLGATE_TEST_BROKER_DB" not in (ROOT / name).read_text(), name


def test_ci_gives_each_half_of_the_postgresql_run_databases_of_its_own() -> None:
    """.ci/run runs the PostgreSQL suite in two halves at once: each has its own PostgreSQL database, cache and
    broker, no two alike, and each half's `make test` is given all three."""
    run = (ROOT / ".ci/run").read_text()

    def default(name: str, variable: str) -> str:
        found = re.search(rf'^{name}="\$\{{{variable}:-([^}}]+)\}}"$', run, re.M)
        assert found, name
        return found.group(1)

    halves = [
        tuple(default(f"{prefix}_{part}", variable) for part, variable in parts)
        for prefix, parts in (
            (
                "PG",
                (
                    ("DATABASE_URL", "DATABASE_URL"),
                    ("REDIS_URL", "REDIS_URL"),
                    ("BROKER_URL", "TOLLGATE_TEST_BROKER_URL"),
                ),
            ),
            (
                "PG2",
                (
                    ("DATABASE_URL", "PG2_DATABASE_URL"),
                    ("REDIS_URL", "PG2_REDIS_URL"),
                    ("BROKER_URL", "PG2_BROKER_URL"),
                ),
            ),
        )
    ]
    assert halves == [
        (
            "postgres://postgres@127.0.0.1:5432/tollgate",
            "redis://127.0.0.1:6379/15",
            "redis://127.0.0.1:6379/14",
        ),
        (
            "postgres://postgres@127.0.0.1:5432/tollgate_half",
            "redis://127.0.0.1:6379/11",
            "redis://127.0.0.1:6379/10",
        ),
    ]
    for group, prefix in ((1, "PG"), (2, "PG2")):
        assert (
            f'PYTEST_ADDOPTS="--splits 2 --group {group} --splitting-algorithm least_duration" '
            f'DATABASE_URL="${prefix}_DATABASE_URL" '
            f'REDIS_URL="${prefix}_REDIS_URL" \\\n  TOLLGATE_TEST_BROKER_URL="${prefix}_BROKER_URL" make test'
        ) in run
