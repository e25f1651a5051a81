"""Holds (`services.holds`): the Hold table, and the units held on each usage and allocation counter (`held`, part
of `used` / `in_use`, so every limit check sees them). `tollgate_metered_consume` (migration 0005) now also
returns the counter's `held`, so a consume's answer shows it without a second query.
"""

from collections.abc import Callable
from importlib import import_module
from typing import Any

import django.db.models.deletion
from django.db import migrations, models

import core.ids

CREATE = """
DROP FUNCTION IF EXISTS tollgate_metered_consume(
    text, text, text, text, text, bigint, timestamptz, timestamptz, timestamptz, boolean, bigint, double precision[]
);

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
    INSERT INTO entitlements_usageevent (
        id, project_id, customer_id, feature_id, event_id, kind, quantity, "timestamp", period_start,
        properties, meter_status, meter_attempts, meter_next_attempt_at, meter_error, created_at
    ) VALUES (
        p_id, p_project_id, p_customer_id, p_feature_id, p_event_id, 'consume', p_quantity, p_at, p_period_start,
        '{}'::jsonb, CASE WHEN p_meter THEN 'pending' ELSE '' END, 0, CASE WHEN p_meter THEN p_at END, '', p_at
    ) ON CONFLICT (project_id, event_id) DO NOTHING;
    IF NOT FOUND THEN
        o_outcome := 'duplicate';
        RETURN;
    END IF;

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

    DELETE FROM entitlements_usageevent WHERE id = p_id;
    SELECT coalesce(max(c.used), 0), coalesce(max(c.held), 0) INTO o_used, o_held FROM entitlements_usagecounter AS c
    WHERE c.customer_id = p_customer_id AND c.feature_id = p_feature_id AND c.period_start = p_period_start;
    o_outcome := CASE WHEN p_limit IS NOT NULL AND o_used + p_quantity > p_limit THEN 'denied' ELSE 'threshold' END;
END
$$;
"""

# Back to migration 0005's function, as that migration creates it.
PREVIOUS = (
    "DROP FUNCTION IF EXISTS tollgate_metered_consume("
    "text, text, text, text, text, bigint, timestamptz, timestamptz, timestamptz, boolean, bigint, "
    "double precision[]);\n"
)


def _on_postgresql(sql: str) -> Callable[[Any, Any], None]:
    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


def _previous(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        module = import_module("entitlements.migrations.0005_metered_consume_function")
        schema_editor.execute(PREVIOUS + module.CREATE)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0002_content_types"),
        ("customers", "0004_customer_admin_list"),
        ("entitlements", "0010_sources_and_billing_facts"),
        ("projects", "0005_field_labels"),
    ]

    operations = [
        migrations.CreateModel(
            name="Hold",
            fields=[
                (
                    "id",
                    core.ids.PublicIdField(
                        editable=False, max_length=40, prefix="hold", primary_key=True, serialize=False
                    ),
                ),
                ("hold_id", models.CharField(max_length=255, verbose_name="hold ID (the tenant's)")),
                ("quantity", models.BigIntegerField()),
                ("consumed", models.BigIntegerField(default=0, verbose_name="reported")),
                ("confirmed", models.BigIntegerField(blank=True, null=True)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("active", "Active"),
                            ("confirmed", "Confirmed"),
                            ("released", "Released"),
                            ("expired", "Expired"),
                        ],
                        default="active",
                        max_length=10,
                    ),
                ),
                ("period_start", models.DateTimeField(blank=True, null=True, verbose_name="period from")),
                ("lots", models.JSONField(blank=True, default=list)),
                ("expires_at", models.DateTimeField(verbose_name="expires")),
                ("created_at", models.DateTimeField(verbose_name="created")),
                ("ended_at", models.DateTimeField(blank=True, null=True, verbose_name="ended")),
            ],
        ),
        migrations.AddField(
            model_name="allocationcounter",
            name="held",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="usagecounter",
            name="held",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.AlterField(
            model_name="creditledgerentry",
            name="type",
            field=models.CharField(
                choices=[
                    ("grant", "Grant"),
                    ("consume", "Consume"),
                    ("revoke", "Revoke"),
                    ("hold", "Hold"),
                    ("hold_return", "hold returned"),
                ],
                max_length=12,
            ),
        ),
        migrations.AddConstraint(
            model_name="allocationcounter",
            constraint=models.CheckConstraint(
                condition=models.Q(("held__gte", 0), ("held__lte", models.F("in_use"))),
                name="allocation_held_within",
            ),
        ),
        migrations.AddConstraint(
            model_name="usagecounter",
            constraint=models.CheckConstraint(
                condition=models.Q(("held__gte", 0), ("held__lte", models.F("used"))),
                name="usage_counter_held_within",
            ),
        ),
        migrations.AddField(
            model_name="hold",
            name="customer",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="holds", to="customers.customer"
            ),
        ),
        migrations.AddField(
            model_name="hold",
            name="feature",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="catalog.feature"
            ),
        ),
        migrations.AddField(
            model_name="hold",
            name="project",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="projects.project"
            ),
        ),
        migrations.AddIndex(
            model_name="hold",
            index=models.Index(
                condition=models.Q(("status", "active")), fields=["expires_at"], name="hold_active_expiry"
            ),
        ),
        migrations.AddIndex(
            model_name="hold",
            index=models.Index(fields=["customer", "feature", "status"], name="hold_customer_feature"),
        ),
        migrations.AddConstraint(
            model_name="hold",
            constraint=models.UniqueConstraint(fields=("project", "hold_id"), name="hold_unique_per_project"),
        ),
        migrations.AddConstraint(
            model_name="hold",
            constraint=models.CheckConstraint(
                condition=models.Q(("quantity__gt", 0)), name="hold_quantity_positive"
            ),
        ),
        migrations.AddConstraint(
            model_name="hold",
            constraint=models.CheckConstraint(
                condition=models.Q(("consumed__gte", 0), ("consumed__lte", models.F("quantity"))),
                name="hold_consumed_within",
            ),
        ),
        migrations.RunPython(_on_postgresql(CREATE), _previous, elidable=False),
    ]
