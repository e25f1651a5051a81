"""The moved models' content types follow them (their permissions, the groups holding them, the admin's log and the
audit log's targets too)."""

from typing import Any

from django.db import migrations

from core.migration_tools import content_types_move

MOVES = [("billing", ("product", "price")), ("entitlements", ("feature", "productfeature", "productaccess"))]


def forwards(apps: Any, schema_editor: Any) -> None:
    for old_app, models in MOVES:
        content_types_move(apps, old_app=old_app, new_app="catalog", models=models)


def backwards(apps: Any, schema_editor: Any) -> None:
    for old_app, models in MOVES:
        content_types_move(apps, old_app="catalog", new_app=old_app, models=models)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0001_initial"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("core", "0007_stripe_writes_once"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
