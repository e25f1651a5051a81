"""The entitlements back office: list pages without N+1 queries, and actions that go through the services."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from core.models import AuditLogEntry
from entitlements.models import Grant
from tests.entitlements.grant_factories import GrantFactory, RevocationFactory
from tests.projects.factories import ProjectFactory


@pytest.fixture
def operator(db):
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    return client


@pytest.mark.parametrize(
    ("path", "make"),
    [("/admin/entitlements/grant/", GrantFactory), ("/admin/entitlements/revocation/", RevocationFactory)],
)
def test_changelists_do_not_grow_queries_with_rows(operator, path, make):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert operator.get(path).status_code == 200
        return len(queries.captured_queries)

    make(project=ProjectFactory())
    few = count()
    for _ in range(10):
        make(project=ProjectFactory())
    assert count() == few


@pytest.mark.parametrize(
    "path",
    [
        "/admin/entitlements/purchase/",
        "/admin/entitlements/usageevent/",
        "/admin/entitlements/creditlot/",
        "/admin/entitlements/creditledgerentry/",
        "/admin/entitlements/entitlementsettings/",
        "/admin/catalog/productaccess/",
    ],
)
def test_other_pages_load(operator, path):
    assert operator.get(path).status_code == 200


def test_ending_a_grant_in_admin_is_audited_with_the_operator(operator, django_capture_on_commit_callbacks):
    grant = GrantFactory(project=ProjectFactory())
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(
            "/admin/entitlements/grant/",
            {"action": "end", "_selected_action": [grant.pk], "apply": "1", "reason": "customer left"},
        )
    assert response.status_code == 302
    assert Grant.objects.get(pk=grant.pk).deleted_at is not None
    entry = AuditLogEntry.objects.get(action="entitlement_grant.deleted")
    assert (entry.actor_type, entry.actor_repr, entry.reason) == ("user", "root", "customer left")


def test_settings_saved_in_the_admin_go_through_the_audited_service(
    operator, tenant_a, django_capture_on_commit_callbacks
):
    from entitlements.models import EntitlementSettings

    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(
            "/admin/entitlements/entitlementsettings/add/",
            {
                "project": tenant_a.project.pk,
                "past_due_grace_seconds": 7200,
                "usage_grace_seconds": 3600,
                "credits_low_percent": 20,
            },
        )
    assert response.status_code == 302, response.content
    saved = EntitlementSettings.objects.get(project=tenant_a.project)
    assert saved.past_due_grace_seconds == 7200
    entry = AuditLogEntry.objects.get(action="entitlement_settings.updated")
    assert (
        entry.actor_repr,
        entry.before["past_due_grace_seconds"],
        entry.after["past_due_grace_seconds"],
    ) == (
        "root",
        259200,
        7200,
    )
