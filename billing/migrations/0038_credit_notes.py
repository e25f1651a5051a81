"""Credit notes of invoices, mirrored from Stripe (billing.models.credit_notes). The roles read them (`support`,
`finance`; `admin` holds everything, as `core.roles` gives it): Django makes a new model's permissions only after
all migrations ran, so the roles made before it are given them here."""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

import core.ids
from core.roles import roles_grant


def forwards(apps: Any, schema_editor: Any) -> None:
    roles_grant(apps, "billing.view_creditnote", roles=("support", "finance", "admin"))
    for action in ("add", "change", "delete"):
        roles_grant(apps, f"billing.{action}_creditnote", roles=("admin",))


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0037_invoice_corrections"),
        ("customers", "0005_customer_erasure"),
        ("projects", "0007_margin_alert_threshold"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.CreateModel(
            name="CreditNote",
            fields=[
                (
                    "id",
                    core.ids.PublicIdField(
                        editable=False, max_length=40, prefix="crn", primary_key=True, serialize=False
                    ),
                ),
                (
                    "stripe_credit_note_id",
                    models.CharField(max_length=255, verbose_name="Stripe credit note"),
                ),
                ("number", models.CharField(blank=True, max_length=100)),
                ("status", models.CharField(choices=[("issued", "Issued"), ("void", "Void")], max_length=20)),
                ("type", models.CharField(blank=True, max_length=20)),
                ("currency", models.CharField(max_length=3)),
                ("amount", models.BigIntegerField(default=0)),
                ("subtotal", models.BigIntegerField(default=0)),
                ("total", models.BigIntegerField(default=0)),
                ("pre_payment_amount", models.BigIntegerField(default=0, verbose_name="before payment")),
                ("post_payment_amount", models.BigIntegerField(default=0, verbose_name="after payment")),
                ("refund_amount", models.BigIntegerField(default=0, verbose_name="refunded")),
                ("credit_amount", models.BigIntegerField(default=0, verbose_name="credited to balance")),
                (
                    "out_of_band_amount",
                    models.BigIntegerField(default=0, verbose_name="settled outside Stripe"),
                ),
                ("reason", models.CharField(blank=True, max_length=50)),
                ("memo", models.TextField(blank=True)),
                ("lines", models.JSONField(blank=True, default=list)),
                (
                    "stripe_event_created",
                    models.BigIntegerField(default=0, verbose_name="newest Stripe event applied (Unix time)"),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created")),
                ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated")),
                (
                    "customer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="credit_notes",
                        to="customers.customer",
                    ),
                ),
                (
                    "invoice",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="credit_notes",
                        to="billing.invoice",
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="credit_notes",
                        to="projects.project",
                    ),
                ),
            ],
            options={
                "verbose_name": "credit note",
                "verbose_name_plural": "credit notes",
                "indexes": [
                    models.Index(fields=["project", "created_at", "id"], name="credit_note_list_page")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("project", "stripe_credit_note_id"), name="credit_note_stripe_id_unique"
                    )
                ],
            },
        ),
        # Backwards leaves the groups as they are: the permissions go with the model.
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
