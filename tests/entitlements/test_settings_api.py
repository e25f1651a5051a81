"""`GET|PATCH /projects/{id}/entitlement_settings` (platform key): defaults, audited changes that reach cached
answers at once, bad input, and the keys that may not use it."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from core.models import AuditLogEntry
from entitlements.models import EntitlementSettings
from tests.entitlements.helpers import check, customer, feature, product, subscribe


def _path(tenant):
    return f"/api/v1/projects/{tenant.project.slug}/entitlement_settings"


def test_defaults_then_an_audited_change(api, tenant_a, platform_key):
    assert api.get(_path(tenant_a), key=platform_key).json() == {
        "object": "entitlement_settings",
        "project": tenant_a.project.pk,
        "past_due_grace_seconds": 259200,
        "usage_grace_seconds": 3600,
        "credits_low_percent": 20,
    }
    changed = api.patch(
        _path(tenant_a), {"usage_grace_seconds": 600, "reason": "late batch uploads"}, key=platform_key
    )
    assert changed.status_code == 200
    assert (changed.json()["usage_grace_seconds"], changed.json()["past_due_grace_seconds"]) == (600, 259200)
    entry = AuditLogEntry.objects.get(action="entitlement_settings.updated")
    assert (entry.reason, entry.before["usage_grace_seconds"], entry.after["usage_grace_seconds"]) == (
        "late batch uploads",
        3600,
        600,
    )
    api.patch(_path(tenant_a), {"usage_grace_seconds": 600}, key=platform_key)  # no change: no audit row
    assert AuditLogEntry.objects.filter(action="entitlement_settings.updated").count() == 1


def test_a_shorter_past_due_grace_reaches_a_cached_answer_at_once(api, tenant_a, platform_key):
    sso = feature(tenant_a.project, "sso")
    plan = product(tenant_a.project, "pro", {sso: True})
    subscribe(customer(tenant_a.project, "u1"), plan, status="past_due")
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert check(api, tenant_a.key, "u1", "sso")["allowed"] is True  # within the default 3 days; cached
        api.patch(_path(tenant_a), {"past_due_grace_seconds": 3600}, key=platform_key)
        assert check(api, tenant_a.key, "u1", "sso")["allowed"] is False


def test_bad_input_is_400_and_changes_nothing(api, tenant_a, platform_key):
    for body, param in (
        ({"usage_grace_seconds": -1}, "usage_grace_seconds"),
        ({"credits_low_percent": 101}, "credits_low_percent"),
        ({"past_due_grace_seconds": "soon"}, "past_due_grace_seconds"),
        ({"grace": 5}, "grace"),
    ):
        answer = api.patch(_path(tenant_a), body, key=platform_key)
        assert answer.status_code == 400, answer.json()
        assert answer.json()["error"]["param"] == param
    assert not EntitlementSettings.objects.exists()
    assert not AuditLogEntry.objects.filter(action="entitlement_settings.updated").exists()


def test_a_project_key_is_refused_and_an_unknown_project_is_404(api, tenant_a, platform_key):
    assert api.get(_path(tenant_a), key=tenant_a.key).status_code == 403
    assert api.patch(_path(tenant_a), {"usage_grace_seconds": 1}, key=tenant_a.key).status_code == 403
    assert api.get("/api/v1/projects/nope/entitlement_settings", key=platform_key).status_code == 404
    assert not EntitlementSettings.objects.exists()
