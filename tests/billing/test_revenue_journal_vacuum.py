"""The revenue journal (billing.models.RevenueChange) is a queue the fold empties every minute: PostgreSQL vacuums
it after every 1,000 dead rows, not after a fifth of the table as by default, so the reads of the rows not yet
folded (revenue metrics, the dashboard) never walk the index entries of rows folded long ago."""

import pytest
from django.db import connection

from billing.models import RevenueChange


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_revenue_journal_is_vacuumed_after_every_thousand_dead_rows():
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [RevenueChange._meta.db_table])
        (options,) = cursor.fetchone()

    assert sorted(options) == [
        "autovacuum_analyze_scale_factor=0",
        "autovacuum_analyze_threshold=1000",
        "autovacuum_vacuum_insert_scale_factor=0",
        "autovacuum_vacuum_insert_threshold=1000",
        "autovacuum_vacuum_scale_factor=0",
        "autovacuum_vacuum_threshold=1000",
    ]
