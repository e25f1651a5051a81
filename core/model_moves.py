"""What a data migration does when a model moves to another app with its table (issue #28's domain apps): the
model's content type follows it, so its permissions, the groups holding them and the admin's history follow too,
and the audit log's targets name the model by its new label."""

from typing import Any


def content_types_move(apps: Any, moves: list[tuple[str, str, str]]) -> None:
    """`moves`: (old app label, model name in lower case, new app label). Safe to run again; a content type the
    new label already has (made by an earlier `migrate` that stopped half-way) gives way to the old one, which
    holds the permissions groups were given."""
    content_type = apps.get_model("contenttypes", "ContentType")
    audit_entry = apps.get_model("core", "AuditLogEntry")
    for old_app, model, new_app in moves:
        old = content_type.objects.filter(app_label=old_app, model=model).first()
        if old is not None:
            content_type.objects.filter(app_label=new_app, model=model).delete()
            old.app_label = new_app
            old.save(update_fields=["app_label"])
        audit_entry.objects.filter(target_type=f"{old_app}.{model}").update(target_type=f"{new_app}.{model}")


def content_types_move_back(apps: Any, moves: list[tuple[str, str, str]]) -> None:
    content_types_move(apps, [(new_app, model, old_app) for old_app, model, new_app in moves])
