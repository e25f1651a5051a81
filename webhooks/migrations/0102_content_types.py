"""`stripe_inbox`'s 0002, which moved the content types of the models that came from the first `webhooks` app to
`stripe_inbox`; it runs only where that one never did. On a fresh database the app's permissions are made now and
given to the operator roles, as `core.roles.roles_sync` gave the first app's. A database from before the
domain-apps release has them already under `webhooks`, where they stay (the roles hold them)."""

from typing import Any

from django.db import migrations

from core.migration_tools import permissions_create
from core.roles import roles_extend

MODELS = ("stripeevent", "stripewebhookendpoint")


def forwards(apps: Any, schema_editor: Any) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    if not content_type.objects.filter(app_label="webhooks", model__in=MODELS).exists():
        permissions_create(apps, "webhooks")
        roles_extend(apps, ("webhooks",))


class Migration(migrations.Migration):
    replaces = [("stripe_inbox", "0002_from_webhooks")]

    dependencies = [
        ("webhooks", "0101_inbox"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("core", "0007_stripe_writes_once"),
    ]

    # Backwards leaves the permissions and the roles as they are (the content types stay with the models).
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
