"""The content types of the models that came from the `webhooks` app move to `events` (their permissions, the
groups holding them, the admin's log and the audit log's targets follow). On a fresh database nothing moves: the
app's permissions are made now and given to the operator roles, as `core.roles.roles_sync` gave `webhooks`'s."""

from typing import Any

from django.db import migrations

from core.migration_tools import content_types_move, permissions_create
from core.roles import roles_extend

MODELS = ("webhookendpoint", "eventsequence", "event", "delivery", "deliveryattempt")


def forwards(apps: Any, schema_editor: Any) -> None:
    if content_types_move(apps, old_app="webhooks", new_app="events", models=MODELS) == 0:
        permissions_create(apps, "events")
        roles_extend(apps, ("events",))


def backwards(apps: Any, schema_editor: Any) -> None:
    content_types_move(apps, old_app="events", new_app="webhooks", models=MODELS)


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0001_initial"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("core", "0007_stripe_writes_once"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
