"""Django's PostgreSQL backend with a health check that costs no round trip while the connection is quiet.

With `CONN_HEALTH_CHECKS`, Django runs `SELECT 1` before the first query of every request that reuses a
persistent connection: a round trip on every request that touches the database. A server that ends a session
(restart, `pg_terminate_backend`, `idle_session_timeout`, a proxy closing it) sends an error message or closes
the socket, either of which leaves the socket readable. So when nothing is waiting on the socket of an idle
connection, it is still open at the server's end and the check answers at once; anything waiting (a farewell,
a NOTIFY, the end of the stream) falls back to Django's `SELECT 1`, which reconnects when it fails. The same
approach as the MySQL driver of Go's `database/sql` (`connCheck`).

What a quiet socket cannot show is a peer that vanished without a word (a cable pulled mid-session); Django's
`SELECT 1` would then wait for the TCP timeout too, so nothing is lost against it.
"""

import select
from typing import Any

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection: Any = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        try:
            # poll, not select: select cannot watch a descriptor numbered 1024 or above.
            watch = select.poll()
            watch.register(connection.fileno(), select.POLLIN)
            waiting = bool(watch.poll(0))
        except (OSError, ValueError):  # no usable descriptor: let Django's check decide
            waiting = True
        if not waiting and connection.info.transaction_status == pq.TransactionStatus.IDLE:
            return True
        return bool(super().is_usable())
