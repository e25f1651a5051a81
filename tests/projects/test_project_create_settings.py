"""Every setting the create request declares is one `project_create` takes (the schema fuzz found one that was a
500)."""

import pytest

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
