"""Database helpers shared by the services."""

from django.db import connections, transaction

from core.statements import opened_by_test_case


def in_transaction() -> bool:
    """Whether code is running inside a transaction that our code opened.

    The atomic blocks that Django's TestCase wraps around each test are not ours, so a service that must not run
    inside a transaction behaves the same in tests.
    """
    connection = transaction.get_connection()
    return any(not opened_by_test_case(block) for block in connection.atomic_blocks)


def connections_check() -> None:
    """Before a worker's task: drops database connections that broke since the last task (a database restart
    leaves them dead) or outlived CONN_MAX_AGE, so the task opens a fresh one instead of failing. Celery's own
    check runs only every CELERY_DB_REUSE_MAX tasks."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


def connections_close() -> None:
    for conn in connections.all(initialized_only=True):
        try:
            conn.close()
        except Exception:  # closing a broken connection may itself fail; it is discarded either way
            conn.connection = None
