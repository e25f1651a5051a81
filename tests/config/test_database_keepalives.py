"""Connections to PostgreSQL carry TCP keepalives from our side: a server that vanished (a failover, a dropped
network) is found dead in about a minute (30 s idle, then 3 probes 10 s apart), not after TCP's two hours."""

import pytest
from django.db import connection


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_postgresql_connection_sends_keepalives():
    connection.ensure_connection()
    dsn = connection.connection.info.get_parameters()
    assert {
        name: dsn.get(name)
        for name in ("keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count")
    } == {
        "keepalives": "1",
        "keepalives_idle": "30",
        "keepalives_interval": "10",
        "keepalives_count": "3",
    }
