"""The moved models' content types (and so their permissions and admin history) and audit targets follow them."""

from typing import Any

from django.db import migrations

from core.model_moves import content_types_move, content_types_move_back

MOVES = [("billing", "customer", "customers"), ("billing", "testclock", "customers")]


def forwards(apps: Any, schema_editor: Any) -> None:
    content_types_move(apps, MOVES)


def backwards(apps: Any, schema_editor: Any) -> None:
    content_types_move_back(apps, MOVES)


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("core", "0007_stripe_writes_once"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
