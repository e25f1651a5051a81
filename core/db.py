"""Database helpers shared by the services."""

from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connection, connections, transaction
from django.db.models import Model

M = TypeVar("M", bound=Model)


def in_transaction() -> bool:
    """Whether code is running inside a transaction that our code opened.

    The atomic blocks that Django's TestCase wraps around each test are not ours (they are marked
    `_from_testcase`), so a service that must not run inside a transaction behaves the same in tests.
    """
    connection = transaction.get_connection()
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


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


def select_columns(model: type[Model], alias: str) -> str:
    """The model's concrete columns as `alias."column", …`, in field order: the select list of a hand-written
    query whose rows `instance_from_row` turns back into instances."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(str(field.column))}" for field in model._meta.concrete_fields)


def instance_from_row(model: type[M], row: Sequence[Any]) -> M:
    """An instance from the values of `select_columns(model, …)`, converted as the ORM converts them (decrypted,
    JSON decoded): for the few reads on a worker's hot path, where building the query would cost more than
    running it."""
    fields = model._meta.concrete_fields
    values = [
        field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
        for field, value in zip(fields, row, strict=True)
    ]
    return model.from_db(connection.alias, [field.attname for field in fields], values)
