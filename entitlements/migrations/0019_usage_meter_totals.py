"""Period totals of usage by Stripe-meter status (issue #30): `UsageMeterTotal`, filled from the usage events
already recorded, and on PostgreSQL `tollgate_metered_consume` (0017) adding a consume a meter bills to its period's
pending total in the same statement that records it.
"""

from importlib import import_module
from typing import Any

import django.db.models.deletion
from django.db import migrations, models

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
            IF p_meter THEN
                INSERT INTO entitlements_usagemetertotal AS t (
                    project_id, customer_id, feature_id, period_start, meter_status, quantity
                ) VALUES (p_project_id, p_customer_id, p_feature_id, p_period_start, 'pending', p_quantity)
                ON CONFLICT (customer_id, feature_id, period_start, meter_status)
                DO UPDATE SET quantity = t.quantity + excluded.quantity;
            END IF;
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
            IF p_meter THEN
                INSERT INTO entitlements_usagemetertotal AS t (
                    project_id, customer_id, feature_id, period_start, meter_status, quantity
                ) VALUES (p_project_id, p_customer_id, p_feature_id, p_period_start, 'pending', p_quantity)
                ON CONFLICT (customer_id, feature_id, period_start, meter_status)
                DO UPDATE SET quantity = t.quantity + excluded.quantity;
            END IF;
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


def totals_fill(apps: Any, schema_editor: Any) -> None:
    """Every event a meter bills, in a period, already recorded: summed into its total."""
    schema_editor.execute(
        "INSERT INTO entitlements_usagemetertotal (project_id, customer_id, feature_id, period_start, meter_status, "
        "quantity) SELECT project_id, customer_id, feature_id, period_start, meter_status, sum(quantity) "
        "FROM entitlements_usageevent WHERE meter_status <> '' AND period_start IS NOT NULL "
        "GROUP BY project_id, customer_id, feature_id, period_start, meter_status"
    )


def function_create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_FUNCTION)


def function_previous(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            import_module("entitlements.migrations.0017_usage_event_partitions").CREATE_FUNCTION
        )


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0003_overage_and_rollover"),
        ("customers", "0005_customer_erasure"),
        ("entitlements", "0018_usage_event_key_project_unchecked"),
        ("projects", "0006_proration_rules"),
    ]

    operations = [
        migrations.CreateModel(
            name="UsageMeterTotal",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("period_start", models.DateTimeField(verbose_name="period from")),
                ("meter_status", models.CharField(max_length=10, verbose_name="Stripe meter")),
                ("quantity", models.BigIntegerField(default=0)),
                (
                    "customer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="customers.customer"
                    ),
                ),
                (
                    "feature",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="catalog.feature"
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="projects.project"
                    ),
                ),
            ],
            options={
                "verbose_name": "usage meter total",
                "verbose_name_plural": "usage meter totals",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("customer", "feature", "period_start", "meter_status"),
                        name="usage_meter_total_unique",
                    ),
                ],
            },
        ),
        migrations.RunPython(totals_fill, migrations.RunPython.noop),
        migrations.RunPython(function_create, function_previous),
    ]
