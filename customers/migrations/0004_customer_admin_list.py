"""The index the back office's list of every project's customers is read from, newest first: `(created_at, id)`,
built without locking the table's writes on PostgreSQL."""

from django.db import migrations, models

from core.migration_tools import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ('customers', '0003_list_page_indexes'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='customer',
            index=models.Index(fields=['created_at', 'id'], name='customer_admin_list'),
        ),
    ]
