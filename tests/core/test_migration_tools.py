"""Moving models between apps (`core.migration_tools`): content types, permissions and their holders, the admin's
log and the audit log's targets follow; a content type that exists already in the new app absorbs the old one."""

from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType

from core.migration_tools import content_types_move
from core.models import AuditLogEntry


def _audit(target_type: str) -> AuditLogEntry:
    return AuditLogEntry.objects.create(
        actor_type="system", action="x", target_type=target_type, target_id="1"
    )


def test_a_content_type_moves_with_what_points_at_it(db):
    old = ContentType.objects.create(app_label="webhooks", model="gone")
    permission = Permission.objects.create(content_type=old, codename="view_gone", name="Can view gone")
    group = Group.objects.create(name="readers")
    group.permissions.add(permission)
    entry = _audit("webhooks.gone")

    assert content_types_move(apps, old_app="webhooks", new_app="events", models=("gone",)) == 1

    old.refresh_from_db()
    assert (old.app_label, old.model) == ("events", "gone")  # the same row: every reference follows
    assert list(group.permissions.all()) == [permission]
    entry.refresh_from_db()
    assert entry.target_type == "events.gone"


def test_an_existing_content_type_of_the_new_app_absorbs_the_old_one(db):
    new = ContentType.objects.get(app_label="webhooks", model="stripeevent")
    replay = Permission.objects.get(content_type=new, codename="replay_stripeevent")
    old = ContentType.objects.create(app_label="stripe_inbox", model="stripeevent")
    old_replay = Permission.objects.create(content_type=old, codename="replay_stripeevent", name="Replay")
    legacy = Permission.objects.create(content_type=old, codename="legacy_stripeevent", name="Legacy")
    group = Group.objects.create(name="support-old")
    group.permissions.add(old_replay, legacy)
    user = User.objects.create_user("op")
    user.user_permissions.add(old_replay)
    log = LogEntry.objects.create(
        user=user, content_type=old, object_id="sevt_1", object_repr="x", action_flag=CHANGE
    )
    entry = _audit("stripe_inbox.stripeevent")

    assert content_types_move(apps, old_app="stripe_inbox", new_app="webhooks", models=("stripeevent",)) == 1

    assert not ContentType.objects.filter(app_label="stripe_inbox").exists()
    assert not Permission.objects.filter(pk=old_replay.pk).exists()
    assert set(group.permissions.all()) == {replay, legacy}
    legacy.refresh_from_db()
    assert legacy.content_type_id == new.pk
    assert list(User.objects.get(pk=user.pk).user_permissions.all()) == [replay]
    log.refresh_from_db()
    assert log.content_type_id == new.pk
    entry.refresh_from_db()
    assert entry.target_type == "webhooks.stripeevent"


def test_nothing_to_move_on_a_fresh_database(db):
    assert content_types_move(apps, old_app="webhooks", new_app="events", models=("event", "delivery")) == 0
