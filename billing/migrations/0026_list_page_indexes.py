"""The index a cursor page of the API's list is read from (core.pagination): `(project, created_at, id)`,
built without locking the table's writes on PostgreSQL."""

from django.db import migrations, models

from core.migration_tools import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ('billing', '0025_entitlement_sources'),
        ('catalog', '0002_content_types'),
        ('customers', '0002_content_types'),
        ('projects', '0005_field_labels'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='invoice',
            index=models.Index(fields=['project', 'created_at', 'id'], name='invoice_list_page'),
        ),
        AddIndexConcurrently(
            model_name='payment',
            index=models.Index(fields=['project', 'created_at', 'id'], name='payment_list_page'),
        ),
        AddIndexConcurrently(
            model_name='subscription',
            index=models.Index(fields=['project', 'created_at', 'id'], name='subscription_list_page'),
        ),
    ]
