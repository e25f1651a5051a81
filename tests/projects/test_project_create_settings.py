"""Every setting the create request declares is one `project_create` takes (the schema fuzz found one that was a
500)."""

import pytest

from core.models import AuditLogEntry
from projects.models import Project

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("value", [True, False])
def test_refund_late_payments_at_creation_is_kept(api, platform_key, value):
    response = api.post(
        "/api/v1/projects", {"slug": "late", "name": "Late", "refund_late_payments": value}, key=platform_key
    )
    assert response.status_code == 201, response.content
    assert response.json()["refund_late_payments"] is value
    assert Project.objects.get(slug="late").refund_late_payments is value


def test_a_voided_first_invoice_ends_its_subscription_only_where_the_project_says_so(api, platform_key):
    """Off by default; set at creation and changed by the platform API, the change audited."""
    created = api.post("/api/v1/projects", {"slug": "fv", "name": "Fv"}, key=platform_key).json()
    assert created["first_invoice_void_ends_subscription"] is False
    response = api.post(
        "/api/v1/projects",
        {"slug": "fv2", "name": "Fv2", "first_invoice_void_ends_subscription": True},
        key=platform_key,
    )
    assert response.status_code == 201, response.content
    assert Project.objects.get(slug="fv2").first_invoice_void_ends_subscription is True

    changed = api.patch(
        f"/api/v1/projects/{created['id']}",
        {"first_invoice_void_ends_subscription": True, "reason": "finance asked"},
        key=platform_key,
    )

    assert changed.status_code == 200, changed.content
    assert changed.json()["first_invoice_void_ends_subscription"] is True
    assert Project.objects.get(slug="fv").first_invoice_void_ends_subscription is True
    audit = AuditLogEntry.objects.get(action="project.updated", target_id=created["id"])
    assert audit.reason == "finance asked"
    assert (
        audit.before["first_invoice_void_ends_subscription"],
        audit.after["first_invoice_void_ends_subscription"],
    ) == (
        False,
        True,
    )
    refused = api.patch(
        f"/api/v1/projects/{created['id']}",
        {"first_invoice_void_ends_subscription": "sometimes"},
        key=platform_key,
    )
    assert (refused.status_code, refused.json()["error"]["param"]) == (
        400,
        "first_invoice_void_ends_subscription",
    )
    assert AuditLogEntry.objects.filter(action="project.updated", target_id=created["id"]).count() == 1
