# Plan credits: a paid subscription period (its invoice's payment is the key) and its credit lots.

import core.ids
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0008_payment_idempotency_key"),
        ("entitlements", "0005_metered_consume_function"),
        ("projects", "0003_operator_permissions"),
    ]

    operations = [
        migrations.AlterField(
            model_name="creditlot",
            name="source",
            field=models.CharField(
                choices=[("purchase", "Purchase"), ("plan", "Plan"), ("grant", "Grant")], max_length=20
            ),
        ),
        migrations.CreateModel(
            name="PlanPeriod",
            fields=[
                (
                    "id",
                    core.ids.PublicIdField(
                        editable=False, max_length=40, prefix="plper", primary_key=True, serialize=False
                    ),
                ),
                ("quantity", models.PositiveIntegerField(default=1)),
                ("period_start", models.DateTimeField(blank=True, null=True)),
                ("period_end", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                ("revoke_reason", models.CharField(blank=True, max_length=500)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "customer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="plan_periods",
                        to="billing.customer",
                    ),
                ),
                (
                    "invoice",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="billing.invoice"
                    ),
                ),
                (
                    "payment",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="plan_period",
                        to="billing.payment",
                    ),
                ),
                (
                    "product",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="billing.product",
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="projects.project"
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="creditlot",
            name="plan_period",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="lots",
                to="entitlements.planperiod",
            ),
        ),
        migrations.AddConstraint(
            model_name="creditlot",
            constraint=models.UniqueConstraint(
                condition=models.Q(("plan_period__isnull", False)),
                fields=("plan_period", "feature"),
                name="credit_lot_plan_period_unique",
            ),
        ),
    ]
