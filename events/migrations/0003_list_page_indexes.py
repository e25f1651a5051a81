"""The index a cursor page of the API's list is read from (core.pagination): `(project, created_at, id)`,
built without locking the table's writes on PostgreSQL."""

from django.db import migrations, models

from core.migration_tools import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ('events', '0002_from_webhooks'),
        ('projects', '0005_field_labels'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='event',
            index=models.Index(fields=['project', 'created_at', 'id'], name='event_list_page'),
        ),
    ]
