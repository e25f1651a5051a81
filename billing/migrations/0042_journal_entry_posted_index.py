"""The index the journal's stream (`GET /api/v1/journal/entries`) reads its pages from, in posting order: a page
after a cursor is one scan bounded by it. Built without locking the journal's writes on PostgreSQL."""

from django.db import migrations, models

from core.migration_tools import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [("billing", "0041_revenue_recognition")]

    operations = [
        AddIndexConcurrently(
            model_name="journalentry",
            index=models.Index(fields=["project", "created_at", "id"], name="journal_entry_posted"),
        ),
    ]
