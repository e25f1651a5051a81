"""The roles again, now that the entitlement permissions exist: `support` (and so `finance`) may grant and revoke
entitlements; `admin` gets them with every other permission."""

from typing import Any

from django.db import migrations


def forwards(apps: Any, schema_editor: Any) -> None:
    from core.roles import roles_sync_with_new_permissions

    roles_sync_with_new_permissions(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_operator_roles"),
        ("entitlements", "0004_operator_permissions"),
    ]

    # Backwards leaves the groups as they are: 0002's backwards deletes them.
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
