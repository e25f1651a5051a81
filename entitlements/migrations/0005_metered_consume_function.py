"""`tollgate_metered_consume`: the hot path of `POST /entitlements/consume` on a metered feature, as one statement.

The function records the consume event and adds it to the period counter within the limit, in one round trip and
in the statement's own transaction (or the caller's): no BEGIN and no COMMIT from the application. Its steps run
in order, so a refused consume takes its event back before anything is visible:

1. insert the event; if the project already has its id → `duplicate`, nothing changed;
2. add to the period's counter if the limit allows it and no usage threshold (`p_marks`) is crossed, creating
   the counter when the period has none → `consumed` with the new `used`;
3. otherwise delete the event again → `denied` (over the limit) or `threshold` (the caller records it in its own
   transaction, with the `usage.threshold_reached` event), with `used` as the counter stands.

PostgreSQL only; other databases take the transactional path in `entitlements.services`.
"""

from collections.abc import Callable
from typing import Any

from django.db import migrations

CREATE = """
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
    OUT o_used bigint
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
        RETURNING c.used INTO o_used;
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
        RETURNING c.used INTO o_used;
        IF FOUND THEN
            o_outcome := 'consumed';
            RETURN;
        END IF;
        -- Another consume created it meanwhile: add to it (second pass).
    END LOOP;

    DELETE FROM entitlements_usageevent WHERE id = p_id;
    SELECT coalesce(max(c.used), 0) INTO o_used FROM entitlements_usagecounter AS c
    WHERE c.customer_id = p_customer_id AND c.feature_id = p_feature_id AND c.period_start = p_period_start;
    o_outcome := CASE WHEN p_limit IS NOT NULL AND o_used + p_quantity > p_limit THEN 'denied' ELSE 'threshold' END;
END
$$;
"""

DROP = (
    "DROP FUNCTION IF EXISTS tollgate_metered_consume("
    "text, text, text, text, text, bigint, timestamptz, timestamptz, timestamptz, boolean, bigint, "
    "double precision[])"
)


def _on_postgresql(sql: str) -> Callable[[Any, Any], None]:
    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("entitlements", "0004_operator_permissions"),
    ]

    operations = [
        migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP), elidable=False),
    ]
