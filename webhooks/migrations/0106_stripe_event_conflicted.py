"""The partial index of the events that met a conflict (`/metrics` sums their conflicts without reading the
others), built without locking the table's writes on PostgreSQL."""

from django.db import migrations, models

from core.migration_tools import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    replaces = [('stripe_inbox', '0006_stripe_event_conflicted')]

    dependencies = [
        ('webhooks', '0105_stripe_events_pruned'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='stripeevent',
            index=models.Index(condition=models.Q(('conflicts__gt', 0)), fields=['conflicts'], name='stripe_event_conflicted'),
        ),
    ]
