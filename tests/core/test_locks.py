"""Named locks (core.locks): taken once, known as held by their holder only, free again once released; on
PostgreSQL another session cannot take a name this one holds; a name locked for a transaction is held until it
ends, and only inside one."""

import time

import psycopg
import pytest
from django.db import connection, transaction

from core.locks import (
    lock_for_transaction,
    lock_held,
    lock_release,
    lock_shared,
    lock_shared_release,
    lock_shared_take,
    lock_taken,
    lock_try,
    locks_shared_held,
)


@pytest.mark.django_db
def test_a_lock_is_taken_once_held_by_its_holder_and_released():
    assert not lock_held("test-lock")
    assert lock_try("test-lock")
    try:
        assert lock_held("test-lock")
        assert not lock_held("another-lock")
        if connection.vendor != "postgresql":
            assert not lock_try("test-lock")  # one process: the set in memory
    finally:
        lock_release("test-lock")
    assert not lock_held("test-lock")


@pytest.mark.django_db
def test_a_lock_taken_for_a_block_is_released_however_the_block_ends():
    with lock_taken("test-lock") as taken:
        assert taken is True
        assert lock_held("test-lock")
    assert not lock_held("test-lock")

    def failing_block() -> None:
        with lock_taken("test-lock") as taken:
            assert taken is True
            raise RuntimeError("the block failed")

    with pytest.raises(RuntimeError, match="the block failed"):
        failing_block()
    assert not lock_held("test-lock")
    assert lock_try("test-lock")  # free again
    lock_release("test-lock")


@pytest.mark.django_db(transaction=True)
def test_a_lock_held_elsewhere_is_not_taken_for_a_block_nor_released_by_it():
    """Another holder: on PostgreSQL another session (an advisory lock is re-entrant within one session), in
    embedded mode the process's own set."""
    other = None
    taken_elsewhere = "SELECT pg_try_advisory_lock(%s, hashtext(%s))"
    if connection.vendor == "postgresql":
        other = _other_session()
        assert other.execute(taken_elsewhere, [0x54474C4B, "test-lock"]).fetchone() == (True,)
    else:
        assert lock_try("test-lock")
    try:
        with lock_taken("test-lock") as taken:
            assert taken is False
        # Still the other holder's.
        if other is not None:
            assert other.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            ).fetchone() == (1,)
        else:
            assert lock_held("test-lock")
    finally:
        if other is not None:
            other.close()
        else:
            lock_release("test-lock")


def _other_session() -> psycopg.Connection:
    """A second PostgreSQL session, beside Django's."""
    params = connection.get_connection_params()
    return psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=True)


def _ended(other: psycopg.Connection) -> None:
    """Closes the other session and waits until its server process has gone: the server ends a session (and frees
    its locks) after the client has hung up, not before `close()` returns; under load that takes a moment."""
    pid = other.info.backend_pid
    other.close()
    deadline = time.monotonic() + 30
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)", [pid])
            if not cursor.fetchone()[0]:
                return
            assert time.monotonic() < deadline, (
                f"the server still runs session {pid} 30 s after it was closed"
            )
            time.sleep(0.05)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_another_session_cannot_take_a_held_name_and_takes_it_once_released():
    other = _other_session()
    try:
        assert lock_try("test-lock")
        taken = "SELECT pg_try_advisory_lock(%s, hashtext(%s))"
        assert other.execute(taken, [0x54474C4B, "test-lock"]).fetchone() == (False,)
        lock_release("test-lock")
        assert other.execute(taken, [0x54474C4B, "test-lock"]).fetchone() == (True,)
        assert not lock_held("test-lock")  # held by the other session, not this one
    finally:
        other.close()


@pytest.mark.django_db(transaction=True)
def test_a_lock_for_a_transaction_needs_one():
    with pytest.raises(RuntimeError, match="needs a transaction"):
        lock_for_transaction("test-lock")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_lock_for_a_transaction_is_held_until_it_ends_however_it_ends():
    other = _other_session()
    taken = "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))"  # the other session's own statement
    try:
        with transaction.atomic():
            lock_for_transaction("test-lock")
            assert other.execute(taken, [0x54474C4B, "test-lock"]).fetchone() == (False,)
        assert other.execute(taken, [0x54474C4B, "test-lock"]).fetchone() == (True,)  # committed: free

        def rolled_back() -> None:
            with transaction.atomic():
                lock_for_transaction("test-lock")
                assert other.execute(taken, [0x54474C4B, "test-lock"]).fetchone() == (False,)
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError, match="rolled back"):
            rolled_back()
        assert other.execute(taken, [0x54474C4B, "test-lock"]).fetchone() == (True,)
    finally:
        other.close()


@pytest.mark.django_db(transaction=True)
def test_a_shared_lock_is_seen_while_held_and_released_as_often_as_taken():
    assert locks_shared_held("test-shared", "test-other") == set()
    with lock_shared("test-shared"):
        lock_shared_take("test-shared")
        assert locks_shared_held("test-shared", "test-other") == {"test-shared"}
        lock_shared_release("test-shared")
        assert locks_shared_held("test-shared") == {"test-shared"}  # the block's hold is still on
    assert locks_shared_held("test-shared") == set()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_shared_lock_of_another_session_is_seen_until_that_session_ends():
    other = _other_session()
    try:
        other.execute("SELECT pg_advisory_lock_shared(%s, hashtext(%s))", [0x54474C4B, "test-shared"])
        assert locks_shared_held("test-shared", "test-other") == {"test-shared"}
        with lock_shared("test-shared"):  # shared: both hold it
            assert locks_shared_held("test-shared") == {"test-shared"}
        assert locks_shared_held("test-shared") == {"test-shared"}
    finally:
        _ended(other)  # a worker that dies: its session's locks go with it
    assert locks_shared_held("test-shared") == set()
