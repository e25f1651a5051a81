"""The roles again, now that product versions and drafts have their permissions: support and finance read them,
admin holds them all (`core.roles`)."""

from typing import Any

from django.contrib.auth.management import create_permissions
from django.db import migrations


def forwards(apps: Any, schema_editor: Any) -> None:
    # Permissions are normally created after all migrations; the groups need the new ones now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    from core.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0012_idempotency_answers_encrypted"),
        ("catalog", "0013_product_versions"),
    ]

    # Backwards leaves the groups as they are: 0002's backwards deletes them.
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
