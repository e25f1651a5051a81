"""The content types of the app's models move from `stripe_inbox` to `webhooks`, the app's label again (their
permissions, the groups holding them, the admin's log and the audit log's targets follow). Nothing moves on a
database that never had `stripe_inbox` (fresh, or from before the domain-apps release): 0102 gave it what it
needed."""

from typing import Any

from django.db import migrations

from core.migration_tools import content_types_move

MODELS = ("stripeevent", "stripewebhookendpoint", "stripeeventspruned")


def forwards(apps: Any, schema_editor: Any) -> None:
    content_types_move(apps, old_app="stripe_inbox", new_app="webhooks", models=MODELS)


def backwards(apps: Any, schema_editor: Any) -> None:
    content_types_move(apps, old_app="webhooks", new_app="stripe_inbox", models=MODELS)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0106_stripe_event_conflicted"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("core", "0007_stripe_writes_once"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
