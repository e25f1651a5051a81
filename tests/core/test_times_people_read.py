"""Times in what tenants and operators read — error messages, and the before/after values of audit rows shown in
the back office — are written as the API writes them: ISO 8601 in UTC ending in `Z`, never `+00:00`; and a
reconciliation drift on a time shows it in UTC to the second."""

from datetime import UTC, datetime

import time_machine
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.test import Client

from billing.models import Drift, ReconciliationRun
from catalog.models import Feature
from core.actors import Actor
from core.models import AuditLogEntry
from entitlements.models import UsageEvent
from entitlements.services.grants import grant_create, grant_delete
from projects.services.keys import api_key_revoke
from tests.entitlements.helpers import customer, feature, product

NOW = datetime(2026, 4, 1, 1, 0, 1, tzinfo=UTC)


def _usage(api, key, event_id, timestamp):
    return api.post(
        "/api/v1/usage",
        {"id": event_id, "customer": "u1", "feature": "api_calls", "quantity": 1, "timestamp": timestamp},
        key=key,
    )


def test_usage_refusals_name_times_ending_in_z(api, tenant_a):
    calls = feature(tenant_a.project, "api_calls", Feature.Type.METERED)
    product(tenant_a.project, "free", {calls: 100})
    tenant_a.project.default_product = "free"
    tenant_a.project.save()
    with time_machine.travel(NOW, tick=False):
        future = _usage(api, tenant_a.key, "e-1", "2026-04-01T02:00:00Z")
        too_old = _usage(api, tenant_a.key, "e-2", "2026-03-31T23:59:30Z")
    assert future.status_code == 400
    assert future.json()["error"] == {
        "type": "invalid_request_error",
        "code": "timestamp_in_future",
        "message": "timestamp: 2026-04-01T02:00:00Z is in the future.",
        "param": "timestamp",
    }
    assert too_old.status_code == 400
    assert too_old.json()["error"]["message"] == (
        "timestamp: 2026-03-31T23:59:30Z is too old. Usage is accepted for the current period (since "
        "2026-04-01T00:00:00Z) and for the previous one until 3600 seconds after it ended "
        "(2026-04-01T01:00:00Z); a backfill of a closed period states `no_billing_side_effects`."
    )
    assert not UsageEvent.objects.exists()


def test_audit_values_name_times_ending_in_z(tenant_a):
    operator = Actor.system("ops")
    reports = feature(tenant_a.project, "reports", Feature.Type.BOOLEAN)
    customer(tenant_a.project, "user-1")
    with time_machine.travel(NOW, tick=False):
        grant = grant_create(
            project=tenant_a.project,
            actor=operator,
            external_id="user-1",
            feature=reports,
            reason="ticket 7",
            value=True,
            value_given=True,
            expires_at=datetime(2031, 1, 2, 3, 4, tzinfo=UTC),
        )
        grant_delete(grant=grant, actor=operator, reason="ticket 8")
        api_key_revoke(actor=operator, api_key=tenant_a.api_key, reason="leaked")
    values = {
        entry.action: entry.after
        for entry in AuditLogEntry.objects.filter(
            action__in=["entitlement_grant.created", "entitlement_grant.deleted", "api_key.revoked"]
        )
    }
    assert values == {
        "entitlement_grant.created": {
            "customer": "user-1",
            "feature": "reports",
            "value": True,
            "expires_at": "2031-01-02T03:04:00Z",
        },
        "entitlement_grant.deleted": {"deleted_at": "2026-04-01T01:00:01Z"},
        "api_key.revoked": {"revoked_at": "2026-04-01T01:00:01Z"},
    }


def test_a_drift_on_a_time_shows_it_in_utc(tenant_a):
    run = ReconciliationRun.objects.create(project=tenant_a.project)
    drift = Drift.objects.create(
        run=run,
        project=tenant_a.project,
        kind=Drift.Kind.MISMATCH,
        object_type="subscription",
        stripe_id="sub_1",
        field="current_period_end",
        local_value="2026-05-20 10:00:00+00:00",  # as reconciliation records a time (str of a datetime)
        stripe_value="2026-05-20 10:00:05+00:00",
    )
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    listing = client.get("/admin/billing/drift/").content.decode()
    assert '<td class="field-local_value_shown">2026-05-20 10:00:00 UTC</td>' in listing
    assert '<td class="field-stripe_value_shown">2026-05-20 10:00:05 UTC</td>' in listing
    assert "+00:00" not in client.get(f"/admin/billing/drift/{quote(drift.pk)}/change/").content.decode()
