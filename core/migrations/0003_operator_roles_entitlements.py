"""The roles again, now that the entitlement permissions exist: `support` (and so `finance`) may grant and revoke
entitlements; `admin` gets them with every other permission."""

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
        ("core", "0002_operator_roles"),
        ("entitlements", "0004_operator_permissions"),
    ]

    # Backwards leaves the groups as they are: 0002's backwards deletes them.
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
