"""The roles again, now that adopting a Stripe account has its permission (`billing.run_adoption`, with the
adoption runs): `admin` holds it, as it holds `billing.run_reconciliation`. Support and finance do not: an
adoption writes a project's whole catalog, customers and subscriptions from Stripe, more than any of their
actions does (`core.roles`)."""

from typing import Any

from django.db import migrations


def forwards(apps: Any, schema_editor: Any) -> None:
    from core.roles import roles_sync_with_new_permissions

    roles_sync_with_new_permissions(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0009_operator_roles_domain_apps"),
        ("billing", "0033_adoption_runs"),
    ]

    # Backwards leaves the groups as they are: 0002's backwards deletes them.
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
