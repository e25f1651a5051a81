"""The operator roles (support, finance, admin) as groups with their permissions.

It named the `webhooks` app once; that app's models now live in `events` and `webhooks` (again), whose own migrations
give the roles their permissions (`core.roles.roles_extend`)."""

from typing import Any

from django.db import migrations


def forwards(apps: Any, schema_editor: Any) -> None:
    from core.roles import roles_sync_with_new_permissions

    roles_sync_with_new_permissions(apps)


def backwards(apps: Any, schema_editor: Any) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=["support", "finance", "admin"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("billing", "0007_operator_permissions"),
        ("projects", "0003_operator_permissions"),
        ("entitlements", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
