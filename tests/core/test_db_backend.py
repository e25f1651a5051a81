"""The PostgreSQL backend's health check: no round trip while the connection is quiet, and a connection the server
ended is still found out and replaced before the request uses it."""

import time

import psycopg
import pytest
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _server_view(pid: int) -> tuple[str, str]:
    """(state, last statement) of a backend, as another session sees it."""
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        row = other.execute("SELECT state, query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


def _new_request() -> None:
    """What Django does between two requests on a persistent connection: the next one checks it again."""
    connection.health_check_done = False


def test_a_quiet_connection_is_checked_without_a_round_trip():
    assert connection.settings_dict["ENGINE"] == "core.backends.postgresql"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid() AS marker")
        pid = cursor.fetchone()[0]
    _new_request()
    connection.close_if_health_check_failed()
    assert connection.connection is not None  # kept
    assert _server_view(pid) == ("idle", "SELECT pg_backend_pid() AS marker")  # no SELECT 1 was sent
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] == pid


def test_a_connection_the_server_ended_is_replaced_before_use():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        for _ in range(100):  # until the backend is gone
            if other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() is None:
                break
            time.sleep(0.02)
    _new_request()
    with connection.cursor() as cursor:  # checked, found closed, reconnected: the request does not fail
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def test_inside_a_transaction_it_asks_the_server():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    connection.connection.execute("BEGIN")
    try:
        assert connection.is_usable() is True
        assert _server_view(pid)[1] == "SELECT 1"
    finally:
        connection.connection.execute("ROLLBACK")


def test_a_connection_on_a_high_descriptor_is_checked_without_a_round_trip():
    # select() cannot watch descriptors ≥ 1024; a busy process reaches them, and the check must still work.
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip("the descriptor limit is below 1100")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
    placeholders = []
    connection.close()
    try:
        while True:  # fill the low descriptors, so the next connection's socket lands above 1024
            fd = os.open(os.devnull, os.O_RDONLY)
            placeholders.append(fd)
            if fd >= 1030:
                break
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid() AS high")
            pid = cursor.fetchone()[0]
        assert connection.connection.fileno() >= 1024
        _new_request()
        connection.close_if_health_check_failed()
        assert connection.connection is not None
        assert _server_view(pid) == ("idle", "SELECT pg_backend_pid() AS high")
    finally:
        connection.close()
        for fd in placeholders:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_statement_a_session_runs_again_and_again_is_prepared_once_with_its_parameters_bound_by_the_server():
    """`DATABASE_PREPARED_STATEMENTS` (on): the server binds the parameters ($1, not a quoted literal in the SQL),
    and once the session has run a statement five times it prepares it, and executes the prepared statement from
    then on instead of parsing and planning the SQL again."""
    from projects.models import Project

    def prepared() -> list[tuple[str, int]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE %s",
                ['%FROM "projects_project" WHERE "projects_project"."slug" = $%'],
            )
            return [(str(statement), int(runs)) for statement, runs in cursor.fetchall()]

    connection.close()  # a fresh session: nothing prepared yet
    for run in range(1, 9):
        assert not Project.objects.filter(slug=f"no-such-project-{run}").exists()
        if run == 5:
            assert prepared() == []  # five runs: not yet
    [(statement, runs)] = prepared()
    assert "no-such-project" not in statement  # the value is a parameter, not part of the statement
    assert runs == 3  # the sixth run prepared it, and the sixth to eighth executed it
