"""The roles again, now that product versions and drafts have their permissions: support and finance read them,
admin holds them all (`core.roles`)."""

from typing import Any

from django.db import migrations


def forwards(apps: Any, schema_editor: Any) -> None:
    from core.roles import roles_sync_with_new_permissions

    roles_sync_with_new_permissions(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0012_idempotency_answers_encrypted"),
        ("catalog", "0013_product_versions"),
    ]

    # Backwards leaves the groups as they are: 0002's backwards deletes them.
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
