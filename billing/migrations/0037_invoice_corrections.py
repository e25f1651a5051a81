"""Correcting an invoice at Stripe (void, mark uncollectible) has its permission, `billing.correct_invoice`: the
`finance` role holds it beside refunds, and `admin` holds everything (`core.roles`)."""

from typing import Any

from django.db import migrations

from core.roles import roles_grant


def forwards(apps: Any, schema_editor: Any) -> None:
    roles_grant(apps, "billing.correct_invoice", roles=("finance", "admin"))


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0036_margin_alerts"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("core", "0012_idempotency_answers_encrypted"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="invoice",
            options={
                "permissions": [("correct_invoice", "Can void invoices and mark them uncollectible")],
                "verbose_name": "invoice",
                "verbose_name_plural": "invoices",
            },
        ),
        # Backwards leaves the groups as they are: the permission goes with the model's options.
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
