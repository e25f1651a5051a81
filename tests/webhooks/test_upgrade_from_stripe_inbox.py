"""The upgrade that made the Stripe inbox the `webhooks` app again (webhooks 0101–0107). A database that applied
`stripe_inbox`'s migrations (and, having gone through the domain-apps release, still holds the first `webhooks`
app's rows, `0001_initial` to `0006_field_labels`) runs only `0107_from_stripe_inbox`: its tables and rows stay,
the content types move to `webhooks` with their permissions, and the groups and users keep what they held."""

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

from core.models import AuditLogEntry
from webhooks.models import StripeEvent

STRIPE_INBOX = (
    "0001_initial",
    "0002_from_webhooks",
    "0003_stripeevent_tenant",
    "0004_webhook_endpoint_api_version",
    "0005_stripe_events_pruned",
    "0006_stripe_event_conflicted",
)
FIRST_WEBHOOKS = (
    "0001_initial",
    "0002_outbound",
    "0003_operator_permissions",
    "0004_event_ordering",
    "0005_verbose_names",
    "0006_field_labels",
)
MODELS = ("stripeevent", "stripewebhookendpoint", "stripeeventspruned")


# The webhooks app's migrations made after the rename.
LATER = ("0108_stripe_event_request_id",)


def _newest() -> tuple[str, str]:
    executor = MigrationExecutor(connection)
    (leaf,) = (key for key in executor.loader.graph.leaf_nodes() if key[0] == "webhooks")
    return leaf


@pytest.fixture
def schema_restored():
    """Whatever the test does, the next tests find the webhooks app migrated, its content types its own."""
    yield
    MigrationRecorder.Migration.objects.filter(app="webhooks", name__in=FIRST_WEBHOOKS).delete()
    MigrationExecutor(connection).migrate([_newest()])
    ContentType.objects.clear_cache()


@pytest.mark.django_db(transaction=True)
def test_a_database_of_stripe_inbox_keeps_its_rows_and_grants(schema_restored):
    event = StripeEvent.objects.create(
        account="platform",
        stripe_event_id="evt_upgrade",
        type="customer.updated",
        stripe_created=1_700_000_000,
        payload={"id": "evt_upgrade", "data": {"object": {"id": "cus_1"}}},
        ordering_key="platform:cus_1",
    )
    replay = Permission.objects.get(content_type__app_label="webhooks", codename="replay_stripeevent")
    view = Permission.objects.get(content_type__app_label="webhooks", codename="view_stripeevent")
    group = Group.objects.create(name="ops-upgrade")
    group.permissions.add(replay)
    user = User.objects.create_user("op-upgrade")
    user.groups.add(group)
    user.user_permissions.add(view)
    types = dict(
        ContentType.objects.filter(app_label="webhooks", model__in=MODELS).values_list("model", "pk")
    )
    assert set(types) == set(MODELS)
    # The database as the release before left it: the content types are `stripe_inbox`'s, so is the audit log's
    # target; `stripe_inbox`'s migrations and the first `webhooks` app's are recorded, none of the new ones.
    ContentType.objects.filter(pk__in=types.values()).update(app_label="stripe_inbox")
    ContentType.objects.clear_cache()
    entry = AuditLogEntry.objects.create(
        actor_type="system",
        action="stripe_event.replay",
        target_type="stripe_inbox.stripeevent",
        target_id=event.pk,
    )
    # The schema as it was then: the webhooks app's later migrations unapplied (the column they add dropped).
    MigrationExecutor(connection).migrate([("webhooks", "0107_from_stripe_inbox")])
    recorder = MigrationRecorder(connection)
    recorder.migration_qs.filter(app="webhooks").delete()
    for name in STRIPE_INBOX:
        recorder.record_applied("stripe_inbox", name)
    for name in FIRST_WEBHOOKS:
        recorder.record_applied("webhooks", name)

    executor = MigrationExecutor(connection)
    executor.loader.check_consistent_history(connection)  # core 0009 depends on webhooks 0102, replacing 0002
    plan = executor.migration_plan([_newest()])
    # 0107 moves what the rename left behind; the webhooks app's later migrations follow as on any database.
    assert [(migration.app_label, migration.name) for migration, _ in plan] == [
        ("webhooks", "0107_from_stripe_inbox"),
        *[("webhooks", name) for name in LATER],
    ]

    executor.migrate([_newest()])

    ContentType.objects.clear_cache()
    assert StripeEvent.objects.get(pk=event.pk).stripe_event_id == "evt_upgrade"
    assert (
        dict(ContentType.objects.filter(app_label="webhooks", model__in=MODELS).values_list("model", "pk"))
        == types
    )
    assert not ContentType.objects.filter(app_label="stripe_inbox").exists()
    assert list(Group.objects.get(pk=group.pk).permissions.all()) == [replay]
    upgraded = User.objects.get(pk=user.pk)
    assert upgraded.has_perm("webhooks.replay_stripeevent")
    assert upgraded.has_perm("webhooks.view_stripeevent")
    entry.refresh_from_db()
    assert entry.target_type == "webhooks.stripeevent"
    recorded = set(recorder.migration_qs.filter(app="webhooks").values_list("name", flat=True))
    assert {name for name in recorded if name.startswith("01")} == {
        "0101_inbox",
        "0102_content_types",
        "0103_stripeevent_tenant",
        "0104_webhook_endpoint_api_version",
        "0105_stripe_events_pruned",
        "0106_stripe_event_conflicted",
        "0107_from_stripe_inbox",
        *LATER,
    }
