"""The roles again, once the domain apps exist (issue #28): models that arrived with them (entitlements'
subscription sources) get their permissions now, and the roles hold them as `roles_sync` gives them on a fresh
database. The moved models' permissions followed their content types already."""

from typing import Any

from django.db import migrations


def forwards(apps: Any, schema_editor: Any) -> None:
    from core.roles import roles_sync_with_new_permissions

    roles_sync_with_new_permissions(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0008_audit_project_as_value"),
        ("customers", "0002_content_types"),
        ("catalog", "0002_content_types"),
        ("events", "0002_from_webhooks"),
        ("webhooks", "0102_content_types"),
        ("entitlements", "0010_sources_and_billing_facts"),
        ("billing", "0025_entitlement_sources"),
        ("sessions", "0001_initial"),
    ]

    # Backwards leaves the groups as they are: 0002's backwards deletes them.
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
