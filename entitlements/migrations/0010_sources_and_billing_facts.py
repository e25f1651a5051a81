"""Entitlements read only facts billing hands them: the subscription sources table, and the payment and invoice
of purchases and paid plan periods as plain values (their columns keep their names and values; only the foreign
key constraints into billing go). `billing.0025_entitlement_sources` fills the new table and columns from
billing's rows."""

import django.db.models.deletion
from django.db import migrations, models


def _value(**kwargs: object) -> models.CharField:
    return models.CharField(max_length=40, **kwargs)  # type: ignore[arg-type]


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0024_move_out_models"),
        ("catalog", "0001_initial"),
        ("customers", "0001_initial"),
        ("entitlements", "0009_move_out_catalog"),
        ("projects", "0005_field_labels"),
    ]

    operations = [
        migrations.CreateModel(
            name="SubscriptionSource",
            fields=[
                (
                    "id",
                    models.CharField(max_length=40, primary_key=True, serialize=False, verbose_name="subscription"),
                ),
                ("quantity", models.PositiveIntegerField(default=1)),
                ("items", models.JSONField(blank=True, default=list)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("incomplete", "Incomplete"),
                            ("incomplete_expired", "Incomplete Expired"),
                            ("trialing", "Trialing"),
                            ("active", "Active"),
                            ("past_due", "Past Due"),
                            ("unpaid", "Unpaid"),
                            ("paused", "Paused"),
                            ("canceled", "Canceled"),
                        ],
                        max_length=30,
                    ),
                ),
                ("current_period_start", models.DateTimeField(blank=True, null=True, verbose_name="period started")),
                ("current_period_end", models.DateTimeField(blank=True, null=True, verbose_name="period ends")),
                ("interval", models.CharField(default="month", max_length=10)),
                ("interval_count", models.PositiveIntegerField(default=1)),
                ("cancel_at_period_end", models.BooleanField(default=False, verbose_name="cancels at period end")),
                ("trial_end", models.DateTimeField(blank=True, null=True, verbose_name="trial ends")),
                ("canceled_at", models.DateTimeField(blank=True, null=True, verbose_name="canceled")),
                ("created_at", models.DateTimeField(verbose_name="created")),
                ("updated_at", models.DateTimeField(verbose_name="updated")),
                (
                    "customer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="subscription_sources",
                        to="customers.customer",
                    ),
                ),
                (
                    "product",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="catalog.product"
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="projects.project"
                    ),
                ),
            ],
            options={
                "verbose_name": "subscription source",
                "verbose_name_plural": "subscription sources",
                "indexes": [models.Index(fields=["customer", "status"], name="subscription_source_customer")],
            },
        ),
        # Purchase.payment: a foreign key into billing → the payment's id as a value, in the same column.
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterField(
                    model_name="purchase",
                    name="payment",
                    field=_value(db_column="payment_id", db_index=True),
                ),
            ],
            state_operations=[
                migrations.RemoveConstraint(model_name="purchase", name="purchase_fulfilment_unique"),
                migrations.RemoveField(model_name="purchase", name="payment"),
                migrations.AddField(
                    model_name="purchase",
                    name="payment_id",
                    field=_value(db_index=True, default="", verbose_name="payment"),
                    preserve_default=False,
                ),
                migrations.AddConstraint(
                    model_name="purchase",
                    constraint=models.UniqueConstraint(
                        fields=("payment_id", "line"), name="purchase_fulfilment_unique"
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="purchase",
            name="payment_status",
            field=models.CharField(blank=True, max_length=30),
        ),
        migrations.AddField(
            model_name="purchase",
            name="dispute_status",
            field=models.CharField(blank=True, max_length=30, verbose_name="dispute"),
        ),
        # PlanPeriod.payment and .invoice: the same.
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterField(
                    model_name="planperiod",
                    name="payment",
                    field=_value(db_column="payment_id", unique=True),
                ),
                migrations.AlterField(
                    model_name="planperiod",
                    name="invoice",
                    field=_value(db_column="invoice_id", db_index=True),
                ),
            ],
            state_operations=[
                migrations.RemoveField(model_name="planperiod", name="payment"),
                migrations.RemoveField(model_name="planperiod", name="invoice"),
                migrations.AddField(
                    model_name="planperiod",
                    name="payment_id",
                    field=_value(default="", unique=True, verbose_name="payment"),
                    preserve_default=False,
                ),
                migrations.AddField(
                    model_name="planperiod",
                    name="invoice_id",
                    field=_value(db_index=True, default="", verbose_name="invoice"),
                    preserve_default=False,
                ),
            ],
        ),
        migrations.AddField(
            model_name="planperiod",
            name="invoice_number",
            field=models.CharField(blank=True, max_length=100),
        ),
    ]
