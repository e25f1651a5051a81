"""Named locks held by one worker across several transactions (and the Stripe calls between them).

On PostgreSQL a name is a session-level advisory lock: held by this process's database connection until it is
released, and released by PostgreSQL itself when the connection ends — so a worker that dies (killed, out of
memory, its host gone) never leaves a name locked. Names are hashed to PostgreSQL's (int, int) lock space;
two names that collide only wait for each other, they never share a holder.

Without PostgreSQL (the embedded SQLite mode) there is one process, so a set in memory does the same.

`lock_for_transaction` is the other kind: a name held until the current transaction ends, for two writers whose
transactions must not both read before either commits (each reads what the other writes).

Session-level locks need a session per client: behind a pooler in transaction mode (PgBouncer) they would be
shared between clients. Point workers at PostgreSQL directly (or at a session-mode pool).
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

# The first half of the (int, int) advisory lock space, so Tollgate's names never meet other users' locks
# (migrate_locked uses a single bigint key).
NAMESPACE = 0x54474C4B  # "TGLK"
# A `pg_locks` row's condition for a lock of this database: advisory locks are per database, and another database
# on the server (another deployment's) holds its own under the same keys.
IN_THIS_DATABASE = "database = (SELECT oid FROM pg_database WHERE datname = current_database())"

_held_locally: set[str] = set()
_shared_locally: dict[str, int] = {}
_local_guard = threading.Lock()


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def lock_try(name: str) -> bool:
    """Takes the named lock if no one holds it; never waits."""
    if not _postgres():
        with _local_guard:
            if name in _held_locally:
                return False
            _held_locally.add(name)
            return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", [NAMESPACE, name])
        return bool(cursor.fetchone()[0])


@contextmanager
def lock_taken(name: str) -> Iterator[bool]:
    """`lock_try` for the length of a block: yields whether the lock was taken, and releases it when the block
    ends (however it ends) if it was."""
    taken = lock_try(name)
    try:
        yield taken
    finally:
        if taken:
            lock_release(name)


def locks_held_in_process() -> set[str]:
    """Without PostgreSQL: the names held in this process now (its one process's locks). On PostgreSQL the server
    knows (`pg_locks`), and this is empty."""
    if _postgres():
        return set()
    with _local_guard:
        return set(_held_locally)


def lock_held(name: str) -> bool:
    """Whether this process's database session holds the named lock now (a session that broke holds nothing)."""
    if not _postgres():
        with _local_guard:
            return name in _held_locally
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
            "AND classid = %s::oid AND objid = hashtext(%s)::oid AND objsubid = 2 AND granted)",
            [NAMESPACE, name],
        )
        return bool(cursor.fetchone()[0])


def lock_release(name: str) -> None:
    """Releases a lock taken with lock_try. A connection that broke meanwhile has released it already."""
    if not _postgres():
        with _local_guard:
            _held_locally.discard(name)
        return
    _unlock("pg_advisory_unlock", name)


def _unlock(function: str, name: str) -> None:
    """Runs PostgreSQL's unlock `function` for the name; a connection that broke meanwhile has released it."""
    if connection.connection is None:
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s, hashtext(%s))", [NAMESPACE, name])
    except Exception:  # the session is gone, and with it the lock
        connection.close()


def lock_shared_take(name: str) -> None:
    """Takes the named lock in shared mode: any number of holders at once, each seen by `locks_shared_held` until
    it lets go (`lock_shared_release`) or its session ends (a dead worker holds nothing). Taken twice, it is held
    twice and released twice."""
    if not _postgres():
        with _local_guard:
            _shared_locally[name] = _shared_locally.get(name, 0) + 1
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock_shared(%s, hashtext(%s))", [NAMESPACE, name])


def lock_shared_release(name: str) -> None:
    if not _postgres():
        with _local_guard:
            _shared_locally[name] = max(_shared_locally.get(name, 0) - 1, 0)
        return
    _unlock("pg_advisory_unlock_shared", name)


@contextmanager
def lock_shared(name: str) -> Iterator[None]:
    """`lock_shared_take` for the length of a block."""
    lock_shared_take(name)
    try:
        yield
    finally:
        lock_shared_release(name)


def locks_shared_held(*names: str) -> set[str]:
    """Which of the named locks some session (any process, on PostgreSQL) holds in shared mode now, in this
    database (another database on the same server, another deployment's, has locks of its own): one read."""
    if not _postgres():
        with _local_guard:
            return {name for name in names if _shared_locally.get(name, 0) > 0}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.name FROM unnest(%s::text[]) AS n(name) WHERE EXISTS (SELECT 1 FROM pg_locks "  # noqa: S608 (constants)
            f"WHERE locktype = 'advisory' AND {IN_THIS_DATABASE} AND classid = %s::oid "
            "AND objid = hashtext(n.name)::oid "
            "AND objsubid = 2 AND mode = 'ShareLock' AND granted)",
            [list(names), NAMESPACE],
        )
        return {row[0] for row in cursor.fetchall()}


def lock_for_transaction(name: str) -> None:
    """Takes the named lock until the current transaction commits or rolls back, waiting for its holder. On
    PostgreSQL a transaction-level advisory lock; elsewhere nothing is needed: SQLite's transactions are
    IMMEDIATE (config/settings), one writer at a time. A statement after it sees what the last holder committed."""
    if not connection.in_atomic_block:
        raise RuntimeError("lock_for_transaction needs a transaction: the lock would end with the statement.")
    if not _postgres():
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [NAMESPACE, name])
