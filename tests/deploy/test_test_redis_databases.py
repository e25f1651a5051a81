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


def test_ci_gives_the_postgresql_run_a_broker_database_of_its_own() -> None:
    run = (ROOT / ".ci/run").read_text()
    redis_url = re.search(r'^PG_REDIS_URL="\$\{REDIS_URL:-([^}]+)\}"$', run, re.M)
    broker_url = re.search(r'^PG_BROKER_URL="\$\{TOLLGATE_TEST_BROKER_URL:-([^}]+)\}"$', run, re.M)
    assert redis_url
    assert broker_url
    assert (redis_url.group(1), broker_url.group(1)) == (
        "redis://127.0.0.1:6379/15",
        "redis://127.0.0.1:6379/14",
    )
    assert 'TOLLGATE_TEST_BROKER_URL="$PG_BROKER_URL" make test' in run
