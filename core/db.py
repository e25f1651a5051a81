"""Database helpers shared by the services."""

from django.db import transaction


def in_transaction() -> bool:
    """Whether code is running inside a transaction that our code opened.

    The atomic blocks that Django's TestCase wraps around each test are not ours (they are marked
    `_from_testcase`), so a service that must not run inside a transaction behaves the same in tests.
    """
    connection = transaction.get_connection()
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)
