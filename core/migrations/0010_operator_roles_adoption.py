"""The roles again, now that adopting a Stripe account has its permission (`billing.run_adoption`, with the
adoption runs): `admin` holds it, as it holds `billing.run_reconciliation`. Support and finance do not: an
adoption writes a project's whole catalog, customers and subscriptions from Stripe, more than any of their
actions does (`core.roles`)."""

from typing import Any

from django.contrib.auth.management import create_permissions
from django.db import migrations


def forwards(apps: Any, schema_editor: Any) -> None:
    # Permissions are normally created after all migrations; the groups need the new one now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    from core.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0009_operator_roles_domain_apps"),
        ("billing", "0033_adoption_runs"),
    ]

    # Backwards leaves the groups as they are: 0002's backwards deletes them.
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
