"""The audit log keeps its project as a value (core sits below projects on the floor plan, issue #28): the column
`project_id` and its data stay (the platform's own
actions, NULL before, hold ""); only the foreign key constraint goes."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0007_stripe_writes_once"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterField(
                    model_name="auditlogentry",
                    name="project",
                    field=models.CharField(
                        blank=True, db_column="project_id", db_index=True, default="", max_length=40
                    ),
                ),
            ],
            state_operations=[
                migrations.RemoveField(model_name="auditlogentry", name="project"),
                migrations.AddField(
                    model_name="auditlogentry",
                    name="project_id",
                    field=models.CharField(
                        blank=True, db_index=True, default="", max_length=40, verbose_name="project ID"
                    ),
                ),
            ],
        ),
    ]
