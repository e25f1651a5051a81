"""The operator roles get the agents app's permissions as `core.roles.roles_sync` would have given them: views to
every role, and everything (confirming agents' money moves among it) to `admin`."""

from typing import Any

from django.db import migrations

from core.migration_tools import permissions_create
from core.roles import roles_extend


def forwards(apps: Any, schema_editor: Any) -> None:
    permissions_create(apps, "agents")
    roles_extend(apps, ("agents",))


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("core", "0011_audit_agent_key_actor"),
    ]

    # Backwards leaves the groups as they are: the permissions go with the app's tables.
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
