"""The margin alert threshold on a project's page in the admin: changed through the project service with the
operator in the audit row (one row for a change of several settings), refused as the API refuses it."""

from django.contrib.admin.utils import quote

from core.models import AuditLogEntry
from projects.models import Project
from tests.backoffice.test_admin_standards import _inline_forms, _root
from tests.projects.factories import ProjectFactory

FORM = {
    "name": "Delta",
    "default_currency": "usd",
    "allowed_redirect_hosts": "[]",
    "payment_ttl_seconds": "3600",
    "default_flow": "checkout",
    "default_product": "",
    "stripe_publishable_key": "",
    "proration_upgrade": "now_prorate",
    "proration_downgrade": "now_prorate",
    "proration_interval_change": "now_prorate",
}


def test_the_threshold_is_set_and_cleared_on_the_project_page(db):
    project = ProjectFactory(slug="delta", name="Delta", payment_ttl_seconds=3600, allowed_redirect_hosts=[])
    _, client = _root()
    url = f"/admin/projects/project/{quote(project.pk)}/change/"
    page = client.get(url).content.decode()
    assert 'name="margin_alert_below_bps"' in page
    assert "margin alert below (basis points)" in page.lower()
    assert 'name="margin_alert_below_bps"' not in client.get("/admin/projects/project/add/").content.decode()

    response = client.post(
        url, {**_inline_forms(page), **FORM, "name": "Delta (EU)", "margin_alert_below_bps": "-2500"}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Project.objects.get(pk=project.pk).margin_alert_below_bps == -2500
    entry = AuditLogEntry.objects.get(action="project.updated")
    assert (entry.actor_repr, entry.reason) == ("root", "changed in the admin")
    assert {k for k in entry.after if entry.after[k] != entry.before[k]} == {"name", "margin_alert_below_bps"}
    assert (entry.before["margin_alert_below_bps"], entry.after["margin_alert_below_bps"]) == (None, -2500)

    response = client.post(
        url, {**_inline_forms(page), **FORM, "name": "Delta (EU)", "margin_alert_below_bps": ""}
    )
    assert response.status_code == 302
    assert Project.objects.get(pk=project.pk).margin_alert_below_bps is None
    assert AuditLogEntry.objects.filter(action="project.updated").count() == 2


def test_the_page_refuses_a_threshold_out_of_range_and_changes_nothing(db):
    project = ProjectFactory(slug="delta", name="Delta", payment_ttl_seconds=3600, margin_alert_below_bps=100)
    _, client = _root()
    url = f"/admin/projects/project/{quote(project.pk)}/change/"
    page = client.get(url).content.decode()
    for value, message in (
        ("10001", "Ensure this value is less than or equal to 10000."),
        ("-1000001", "Ensure this value is greater than or equal to -1000000."),
        ("12.5", "Enter a whole number."),
    ):
        response = client.post(
            url, {**_inline_forms(page), **FORM, "name": "Renamed", "margin_alert_below_bps": value}
        )
        assert response.status_code == 200
        assert message in response.content.decode()
    project.refresh_from_db()
    assert (project.margin_alert_below_bps, project.name) == (100, "Delta")
    assert not AuditLogEntry.objects.exists()
