"""Usage events in monthly partitions (issue #30): on PostgreSQL `entitlements_usageevent` becomes a table
partitioned by range on `timestamp`, one partition per calendar month (UTC) plus a default one, keeping its name,
rows, columns, indexes and foreign keys. Its primary key becomes (id, timestamp), as a partitioned table's must
include the partition key, and the tenant's id stops being unique on the table itself: `UsageEventKey` holds the
(project, event id) uniqueness across months, filled here from the rows already there.

`tollgate_metered_consume` (migrations 0005 and 0011) claims the key before it records the event, and gives both
back when it refuses. SQLite keeps a plain table (and the same key table).

The conversion copies the table once, inside the migration's transaction: plan a maintenance window in
proportion to the table's size. New months are made ahead by `services.usage_partitions` (beat task, command,
and on demand before an insert).
"""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import import_module
from typing import Any

import django.db.models.deletion
from django.db import migrations, models

TABLE = "entitlements_usageevent"
SWAP = "entitlements_usageevent_swap"
AHEAD = 3  # months made ahead of the current one, as `services.usage_partitions` does

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION tollgate_metered_consume(
    p_id text,
    p_project_id text,
    p_customer_id text,
    p_feature_id text,
    p_event_id text,
    p_quantity bigint,
    p_at timestamptz,
    p_period_start timestamptz,
    p_period_end timestamptz,
    p_meter boolean,
    p_limit bigint,
    p_marks double precision[],
    OUT o_outcome text,
    OUT o_used bigint,
    OUT o_held bigint
) LANGUAGE plpgsql AS $$
-- p_marks: the usage thresholds, ascending. `width_bucket(n, p_marks)` counts the marks at or below n, so a use
-- from n to n + q crosses one exactly when the two counts differ. It is a plain expression on the row, so when
-- the UPDATE waits for a concurrent consume, PostgreSQL re-checks it against the row as that one left it.
BEGIN
    -- The key first: a concurrent consume with the same id waits on it, then finds it taken.
    INSERT INTO entitlements_usageeventkey (project_id, event_id, customer_id, usage_event_id, "timestamp")
    VALUES (p_project_id, p_event_id, p_customer_id, p_id, p_at)
    ON CONFLICT (project_id, event_id) DO NOTHING;
    IF NOT FOUND THEN
        o_outcome := 'duplicate';
        RETURN;
    END IF;
    INSERT INTO entitlements_usageevent (
        id, project_id, customer_id, feature_id, event_id, kind, quantity, "timestamp", period_start,
        properties, meter_status, meter_attempts, meter_next_attempt_at, meter_error, created_at
    ) VALUES (
        p_id, p_project_id, p_customer_id, p_feature_id, p_event_id, 'consume', p_quantity, p_at, p_period_start,
        '{}'::jsonb, CASE WHEN p_meter THEN 'pending' ELSE '' END, 0, CASE WHEN p_meter THEN p_at END, '', p_at
    );

    FOR attempt IN 1..2 LOOP
        UPDATE entitlements_usagecounter AS c
        SET used = c.used + p_quantity, updated_at = p_at
        WHERE c.customer_id = p_customer_id AND c.feature_id = p_feature_id AND c.period_start = p_period_start
            AND (p_limit IS NULL OR c.used + p_quantity <= p_limit)
            AND width_bucket(c.used, p_marks) = width_bucket(c.used + p_quantity, p_marks)
        RETURNING c.used, c.held INTO o_used, o_held;
        IF FOUND THEN
            o_outcome := 'consumed';
            RETURN;
        END IF;
        EXIT WHEN EXISTS (
            SELECT 1 FROM entitlements_usagecounter AS c
            WHERE c.customer_id = p_customer_id AND c.feature_id = p_feature_id AND c.period_start = p_period_start
        );
        -- The period's first use: create its counter, unless this use alone is refused or crosses a mark.
        EXIT WHEN (p_limit IS NOT NULL AND p_quantity > p_limit) OR width_bucket(p_quantity, p_marks) > 0;
        INSERT INTO entitlements_usagecounter AS c (
            project_id, customer_id, feature_id, period_start, period_end, used, updated_at
        ) VALUES (p_project_id, p_customer_id, p_feature_id, p_period_start, p_period_end, p_quantity, p_at)
        ON CONFLICT (customer_id, feature_id, period_start) DO NOTHING
        RETURNING c.used, c.held INTO o_used, o_held;
        IF FOUND THEN
            o_outcome := 'consumed';
            RETURN;
        END IF;
        -- Another consume created it meanwhile: add to it (second pass).
    END LOOP;

    DELETE FROM entitlements_usageevent WHERE id = p_id AND "timestamp" = p_at;
    DELETE FROM entitlements_usageeventkey WHERE project_id = p_project_id AND event_id = p_event_id;
    SELECT coalesce(max(c.used), 0), coalesce(max(c.held), 0) INTO o_used, o_held FROM entitlements_usagecounter AS c
    WHERE c.customer_id = p_customer_id AND c.feature_id = p_feature_id AND c.period_start = p_period_start;
    o_outcome := CASE WHEN p_limit IS NOT NULL AND o_used + p_quantity > p_limit THEN 'denied' ELSE 'threshold' END;
END
$$;
"""


def keys_fill(apps: Any, schema_editor: Any) -> None:
    """Every event recorded so far claims its key (their ids were unique per project until now)."""
    schema_editor.execute(
        'INSERT INTO entitlements_usageeventkey (project_id, event_id, customer_id, usage_event_id, "timestamp") '
        f'SELECT project_id, event_id, customer_id, id, "timestamp" FROM {TABLE}'
    )


def _month_bounds(month: datetime) -> tuple[str, str]:
    following = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    return month.strftime("%Y-%m-%d 00:00:00+00"), following.strftime("%Y-%m-%d 00:00:00+00")


def _rebuild(cursor: Any, *, partitioned: bool) -> None:
    """Rebuilds the usage-event table as partitioned by month (or back to a plain table), under its own name and
    with its rows, constraints and indexes; the primary key is (id, timestamp) when partitioned, else (id)."""
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [TABLE])
    if (cursor.fetchone()[0] == "p") == partitioned:
        return
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
        "AND contype = 'f' ORDER BY conname",
        [TABLE],
    )
    foreign_keys = cursor.fetchall()
    cursor.execute(
        "SELECT pg_get_indexdef(x.indexrelid) FROM pg_index x WHERE x.indrelid = %s::regclass "
        "AND NOT x.indisprimary AND NOT x.indisunique ORDER BY x.indexrelid",
        [TABLE],
    )
    indexes = [row[0] for row in cursor.fetchall()]
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {SWAP}")
    split = ' PARTITION BY RANGE ("timestamp")' if partitioned else ""
    cursor.execute(f"CREATE TABLE {TABLE} (LIKE {SWAP} INCLUDING DEFAULTS INCLUDING CONSTRAINTS){split}")
    if partitioned:
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', \"timestamp\" AT TIME ZONE 'UTC') FROM {SWAP} "
            "UNION SELECT date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => n) "
            "FROM generate_series(0, %s) AS n ORDER BY 1",
            [AHEAD],
        )
        for (month,) in cursor.fetchall():
            lower, upper = _month_bounds(month)
            cursor.execute(
                f"CREATE TABLE {TABLE}_p{month:%Y_%m} PARTITION OF {TABLE} FOR VALUES FROM ('{lower}') TO ('{upper}')"
            )
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {SWAP}")  # noqa: S608
    cursor.execute(f"DROP TABLE {SWAP}")
    key = '(id, "timestamp")' if partitioned else "(id)"
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY {key}")
    for index in indexes:
        cursor.execute(re.sub(r" ON (ONLY )?(\S+\.)?\S+ USING ", f" ON {TABLE} USING ", index, count=1))
    for name, definition in foreign_keys:
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} {definition}")


def _on_postgresql(step: Callable[[Any], None]) -> Callable[[Any, Any], None]:
    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                step(cursor)

    return run


def _function_create(cursor: Any) -> None:
    cursor.execute(CREATE_FUNCTION)


def _function_previous(cursor: Any) -> None:
    cursor.execute(import_module("entitlements.migrations.0011_holds").CREATE)


class Migration(migrations.Migration):
    dependencies = [
        ("entitlements", "0016_subscription_versions"),
        ("projects", "0005_field_labels"),
        ("customers", "0004_customer_admin_list"),
    ]

    operations = [
        migrations.CreateModel(
            name="UsageEventKey",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "project", "event_id", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="projects.project",
                    ),
                ),
                ("event_id", models.CharField(max_length=255, verbose_name="event ID (the tenant's)")),
                (
                    "customer",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="customers.customer",
                    ),
                ),
                ("usage_event_id", models.CharField(max_length=40, verbose_name="usage event")),
                ("timestamp", models.DateTimeField()),
            ],
            options={"verbose_name": "usage event key", "verbose_name_plural": "usage event keys"},
        ),
        migrations.CreateModel(
            name="UsagePartitionDrop",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("month", models.DateField(verbose_name="month")),
                ("table", models.CharField(max_length=63, verbose_name="partition")),
                ("events", models.BigIntegerField(verbose_name="events dropped")),
                ("keys", models.BigIntegerField(verbose_name="event keys removed")),
                ("dropped_at", models.DateTimeField(auto_now_add=True, verbose_name="dropped")),
            ],
            options={"verbose_name": "usage partition drop", "verbose_name_plural": "usage partition drops"},
        ),
        migrations.RunPython(keys_fill, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="usageevent", name="usage_event_id_unique"),
        migrations.RunPython(
            _on_postgresql(lambda cursor: _rebuild(cursor, partitioned=True)),
            _on_postgresql(lambda cursor: _rebuild(cursor, partitioned=False)),
        ),
        migrations.RunPython(_on_postgresql(_function_create), _on_postgresql(_function_previous)),
    ]
