"""The index of finished deliveries by their last attempt (retention's prune, `/metrics`' last hour), built
without locking the table's writes on PostgreSQL."""

from django.db import migrations, models

from core.migration_tools import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ('events', '0003_list_page_indexes'),
        ('projects', '0006_proration_rules'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='delivery',
            index=models.Index(fields=['status', 'last_attempt_at'], name='delivery_finished'),
        ),
    ]
