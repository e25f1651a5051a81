"""Connections to PostgreSQL carry TCP keepalives on both ends: a server that vanished (a failover, a dropped
network) is found dead in about a minute (30 s idle, then 3 probes 10 s apart), not after TCP's two hours; and
the server, asked in the session's startup options, does the same towards a client host that vanished
(tests/e2e/test_worker_hosts.py loses one)."""

import pytest
from django.db import connection


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_postgresql_connection_sends_keepalives():
    connection.ensure_connection()
    dsn = connection.connection.info.get_parameters()
    assert {
        name: dsn.get(name)
        for name in (
            "keepalives",
            "keepalives_idle",
            "keepalives_interval",
            "keepalives_count",
            "tcp_user_timeout",
        )
    } == {
        "keepalives": "1",
        "keepalives_idle": "30",
        "keepalives_interval": "10",
        "keepalives_count": "3",
        "tcp_user_timeout": "60000",
    }
    # The server's end of this session (a TCP connection): the values it was asked for, not its configuration's.
    with connection.cursor() as cursor:
        shown = {}
        for name in (
            "tcp_keepalives_idle",
            "tcp_keepalives_interval",
            "tcp_keepalives_count",
            "tcp_user_timeout",
        ):
            cursor.execute(f"SHOW {name}")
            shown[name] = cursor.fetchone()[0]
    assert shown == {
        "tcp_keepalives_idle": "30",
        "tcp_keepalives_interval": "10",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "60000",  # milliseconds
    }
