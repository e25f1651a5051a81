"""One many-connection race at a time on a PostgreSQL server, across every suite that shares it.

A race test releases up to fifty threads at once, each on a connection of its own. CI runs the PostgreSQL suite in
two halves at once against one server (each half its own database, .ci/run); two fifty-thread races, one in each
half, asked the server for more than its `max_connections` (100 by default), and one consumer got "sorry, too many
clients already" instead of its answer. The gate is the server's own: a session advisory lock in the maintenance
database `postgres`, which every database on the server shares, held on a connection of its own while the race runs.
The server frees it when that connection ends, so a killed suite leaves nothing held. On SQLite there is nothing to
share and the gate is open.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection

# Any fixed number: the key every suite on the server takes, whatever its database.
RACE_LOCK_KEY = 7_302_118_544


def _maintenance_connection() -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        dbname="postgres",
        host=settings.get("HOST") or None,
        port=settings.get("PORT") or None,
        user=settings.get("USER") or None,
        password=settings.get("PASSWORD") or None,
        autocommit=True,
    )


@contextmanager
def one_race_at_a_time() -> Iterator[None]:
    """Holds the server-wide race lock for the block: waits while another suite's race holds it."""
    if connection.vendor != "postgresql":
        yield
        return
    with _maintenance_connection() as gate:
        gate.execute("SELECT pg_advisory_lock(%s)", [RACE_LOCK_KEY])
        try:
            yield
        finally:
            gate.execute("SELECT pg_advisory_unlock(%s)", [RACE_LOCK_KEY])
