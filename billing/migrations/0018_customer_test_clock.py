import django.db.models.deletion
from django.db import migrations, models

import core.ids


class Migration(migrations.Migration):
    """Stripe test clocks of test-mode projects (`TestClock`), and the clock a customer was created on
    (`Customer.test_clock`)."""

    dependencies = [
        ("billing", "0017_payment_amount_discount"),
        ("projects", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="TestClock",
            fields=[
                (
                    "id",
                    core.ids.PublicIdField(
                        editable=False, max_length=40, prefix="tclk", primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(blank=True, max_length=300)),
                ("frozen_time", models.DateTimeField()),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("ready", "Ready"),
                            ("advancing", "Advancing"),
                            ("internal_failure", "Internal Failure"),
                        ],
                        default="ready",
                        max_length=20,
                    ),
                ),
                ("advancing_to", models.DateTimeField(blank=True, null=True)),
                ("deletes_after", models.DateTimeField()),
                ("stripe_test_clock_id", models.CharField(max_length=100)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="test_clocks",
                        to="projects.project",
                    ),
                ),
            ],
            options={
                "verbose_name": "test clock",
                "verbose_name_plural": "test clocks",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("project", "stripe_test_clock_id"), name="test_clock_stripe_id_unique"
                    )
                ],
            },
        ),
        migrations.AddField(
            model_name="customer",
            name="test_clock",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="customers",
                to="billing.testclock",
            ),
        ),
    ]
