"""A project's margin alert threshold (`margin_alert_below_bps`, #54 point 4): set by the platform at creation or by
a change, audited, shown; null by default; refused outside −1,000,000..10,000 with nothing changed."""

import pytest

from core.models import AuditLogEntry
from projects.models import Project


def test_null_by_default_and_shown_to_the_project(api, tenant_a):
    assert Project.objects.get(pk=tenant_a.project.pk).margin_alert_below_bps is None
    assert api.get("/api/v1/project", key=tenant_a.key).json()["margin_alert_below_bps"] is None


def test_set_at_creation(api, platform_key):
    response = api.post(
        "/api/v1/projects",
        {"slug": "shop", "name": "Shop", "margin_alert_below_bps": -2500},
        key=platform_key,
    )
    assert response.status_code == 201, response.json()
    assert response.json()["margin_alert_below_bps"] == -2500
    assert Project.objects.get(slug="shop").margin_alert_below_bps == -2500
    assert AuditLogEntry.objects.get(action="project.created").after["margin_alert_below_bps"] == -2500


def test_a_change_is_audited_and_null_stops_the_alerts(api, platform_key, tenant_a):
    for value in (2000, 10_000, -1_000_000, None):
        response = api.patch("/api/v1/projects/alpha", {"margin_alert_below_bps": value}, key=platform_key)
        assert response.status_code == 200, response.json()
        assert response.json()["margin_alert_below_bps"] == value
        assert Project.objects.get(pk=tenant_a.project.pk).margin_alert_below_bps == value
    changes = [
        (entry.before["margin_alert_below_bps"], entry.after["margin_alert_below_bps"])
        for entry in AuditLogEntry.objects.filter(action="project.updated").order_by("created_at", "pk")
    ]
    assert changes == [(None, 2000), (2000, 10_000), (10_000, -1_000_000), (-1_000_000, None)]
    assert AuditLogEntry.objects.filter(action="project.updated").first().actor_type == "platform_key"


@pytest.mark.parametrize("value", [10_001, -1_000_001, "twenty", 20.5, True, [2000]])
def test_a_value_out_of_range_or_not_a_whole_number_is_400_and_changes_nothing(
    api, platform_key, tenant_a, value
):
    Project.objects.filter(pk=tenant_a.project.pk).update(margin_alert_below_bps=1500)
    response = api.patch(
        "/api/v1/projects/alpha", {"margin_alert_below_bps": value, "name": "Renamed"}, key=platform_key
    )
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "invalid_parameter",
        "margin_alert_below_bps",
    )
    project = Project.objects.get(pk=tenant_a.project.pk)
    assert (project.margin_alert_below_bps, project.name) == (1500, "Alpha")
    assert not AuditLogEntry.objects.exists()


def test_a_creation_out_of_range_creates_nothing(api, platform_key):
    response = api.post(
        "/api/v1/projects",
        {"slug": "shop", "name": "Shop", "margin_alert_below_bps": 20_000},
        key=platform_key,
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "margin_alert_below_bps"
    assert not Project.objects.filter(slug="shop").exists()
    assert not AuditLogEntry.objects.exists()
