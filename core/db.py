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
    lists: dict[tuple[type[Model], str], str] = connection.__dict__.setdefault(_COLUMNS_ATTRIBUTE, {})
    columns = lists.get((model, alias))
    if columns is None:
        quote = connection.ops.quote_name
        columns = lists[model, alias] = ", ".join(
            f"{alias}.{quote(str(field.column))}" for field in model._meta.concrete_fields
        )
    return columns


_COLUMNS_ATTRIBUTE = "_tollgate_select_columns"
_ROWS_ATTRIBUTE = "_tollgate_instance_rows"


def _row_reader(model: type[Model]) -> tuple[list[str], list[tuple[int, list[Any], Any]]]:
    """The model's attribute names, and for each column that needs them the converters the ORM applies to it on
    this connection (the backend's first: SQLite's dates and times are parsed and made aware; then the field's:
    decrypted, JSON decoded), kept per connection."""
    readers: dict[type[Model], Any] = connection.__dict__.setdefault(_ROWS_ATTRIBUTE, {})
    reader = readers.get(model)
    if reader is None:
        converters = []
        for index, field in enumerate(model._meta.concrete_fields):
            column = field.get_col(model._meta.db_table)
            found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if found:
                converters.append((index, found, column))
        reader = readers[model] = ([field.attname for field in model._meta.concrete_fields], converters)
    return reader


def instance_from_row(model: type[M], row: Sequence[Any]) -> M:
    """An instance from the values of `select_columns(model, …)`, converted as the ORM converts them: for the
    few reads on a worker's hot path, where building the query would cost more than running it."""
    attnames, converters = _row_reader(model)
    if len(row) != len(attnames):
        raise ValueError(f"{model.__name__}: {len(row)} values for {len(attnames)} columns")
    values = list(row)
    for index, found, column in converters:
        value = values[index]
        for converter in found:
            value = converter(value, column, connection)
        values[index] = value
    return model.from_db(connection.alias, attnames, values)
