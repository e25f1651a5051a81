"""Moving models from one app to another without touching their tables or their rows.

The receiving app's first migration declares the models in migration state only (`SeparateDatabaseAndState`,
`db_table` pinned to the old tables) and then `tables_create_missing`: a database migrated before the move keeps
its tables as they are, a fresh one gets them. A data migration then moves the old app's content types
(`content_types_move`): permissions, the groups that hold them and the admin's log follow their content type,
and the audit log's targets (`<app>.<model>` strings) are renamed with them.

And an index added to a table that may already be large (`AddIndexConcurrently`).
"""

from collections.abc import Sequence
from typing import Any

from django.contrib.postgres import operations as postgres_operations
from django.db import migrations


def tables_create_missing(app_label: str, model_names: Sequence[str]) -> migrations.RunPython:
    """Creates each model's table (with its indexes and constraints) where the database lacks it; backwards,
    drops the tables again, as reversing their `CreateModel` would."""

    def forwards(apps: Any, schema_editor: Any) -> None:
        existing = set(schema_editor.connection.introspection.table_names())
        for name in model_names:
            model = apps.get_model(app_label, name)
            if model._meta.db_table not in existing:
                schema_editor.create_model(model)

    def backwards(apps: Any, schema_editor: Any) -> None:
        existing = set(schema_editor.connection.introspection.table_names())
        for name in reversed(model_names):
            model = apps.get_model(app_label, name)
            if model._meta.db_table in existing:
                schema_editor.delete_model(model)

    return migrations.RunPython(forwards, backwards)


def content_types_move(apps: Any, *, old_app: str, new_app: str, models: Sequence[str]) -> int:
    """Moves the content types of `models` (lower-case names) from `old_app` to `new_app`; returns how many it
    moved. Where `new_app` has the content type already (made before this ran), the old one's permissions are
    merged into the new one's (groups and users keep what they held) and the old one is deleted."""
    content_type = apps.get_model("contenttypes", "ContentType")
    permission = apps.get_model("auth", "Permission")
    group_permissions = apps.get_model("auth", "Group").permissions.through
    user_permissions = apps.get_model("auth", "User").user_permissions.through
    log_entry = apps.get_model("admin", "LogEntry")
    audit_entry = apps.get_model("core", "AuditLogEntry")
    moved = 0
    for model in models:
        old = content_type.objects.filter(app_label=old_app, model=model).first()
        audit_entry.objects.filter(target_type=f"{old_app}.{model}").update(target_type=f"{new_app}.{model}")
        if old is None:
            continue
        moved += 1
        new = content_type.objects.filter(app_label=new_app, model=model).first()
        if new is None:
            content_type.objects.filter(pk=old.pk).update(app_label=new_app)
            continue
        for old_permission in permission.objects.filter(content_type=old):
            kept = permission.objects.filter(content_type=new, codename=old_permission.codename).first()
            if kept is None:
                permission.objects.filter(pk=old_permission.pk).update(content_type=new)
                continue
            for through in (group_permissions, user_permissions):
                holders = through.objects.filter(permission_id=old_permission.pk)
                owner = "group_id" if through is group_permissions else "user_id"
                for holder in holders.values_list(owner, flat=True):
                    through.objects.get_or_create(**{owner: holder, "permission_id": kept.pk})
                holders.delete()
            old_permission.delete()
        log_entry.objects.filter(content_type=old).update(content_type=new)
        content_type.objects.filter(pk=old.pk).delete()
    return moved


def permissions_create(apps: Any, app_label: str) -> None:
    """Creates the app's content types and permissions now (Django makes them after all migrations ran)."""
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config(app_label)
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None


class AddIndexConcurrently(postgres_operations.AddIndexConcurrently):
    """Django's `AddIndexConcurrently` (PostgreSQL: `CREATE INDEX CONCURRENTLY`, writes go on while it is built; the
    migration must have `atomic = False`), falling back to a plain `AddIndex` on other databases (SQLite)."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)
