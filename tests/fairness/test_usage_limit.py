"""Per-tenant fairness of usage intake: a project's limit over all its keys (429 `rate_limit_error` with
Retry-After), besides each key's, counted per project in `/metrics`; another project keeps its budget."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.test import override_settings

from catalog.models import Feature
from entitlements.models import UsageEvent
from tests.entitlements.helpers import feature, product
from tests.projects.factories import ApiKeyFactory

# Mid-second: the project's one-second window cannot roll over between two requests of a test.
FROZEN = datetime(2031, 5, 6, 7, 8, 9, 250_000, tzinfo=UTC)


@pytest.fixture
def metered(tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):
        calls = feature(tenant.project, "calls", Feature.Type.METERED)
        product(tenant.project, "free", {calls: 1000})
        tenant.project.default_product = "free"
        tenant.project.save()


def _usage(api, key, event_id):
    body = {"id": event_id, "customer": "u1", "feature": "calls", "quantity": 1}
    return api.post("/api/v1/usage", body, key=key)


def _throttled_lines(client):
    text = client.get("/metrics").content.decode()
    return [line for line in text.splitlines() if line.startswith("tollgate_project_throttled_requests")]


# Key limit 0: the project's counter counted on its own; 1000: counted in the key limiter's round trip.
# (Both through pytest-django's `settings`: an override_settings decorator beside it would be undone out of order
# and leave the limit of 3 to every later test.)
@pytest.mark.parametrize("key_limit", [0, 1000])
def test_a_projects_excess_over_all_its_keys_is_429_and_another_project_keeps_its_budget(
    api, client, tenant_a, tenant_b, metered, settings, key_limit
):
    settings.PROJECT_USAGE_RATE_LIMIT_PER_SECOND = 3
    settings.API_RATE_LIMIT_PER_MINUTE = key_limit
    second_key = str(ApiKeyFactory(project=tenant_a.project).secret)
    with time_machine.travel(FROZEN, tick=False):
        statuses = [
            _usage(api, tenant_a.key, "a1").status_code,
            _usage(api, second_key, "a2").status_code,
            api.post(
                "/api/v1/entitlements/consume",
                {"id": "a3", "customer": "u1", "feature": "calls"},
                key=second_key,
            ).status_code,
        ]
        assert statuses == [201, 201, 200]
        refused = _usage(api, tenant_a.key, "a4")
        assert refused.status_code == 429
        assert refused["Retry-After"] == "1"
        assert refused.json()["error"]["type"] == "rate_limit_error"
        batch = api.post(
            "/api/v1/usage/batch",
            {"events": [{"id": "a5", "customer": "u1", "feature": "calls", "quantity": 1}]},
            key=second_key,
        )
        assert batch.status_code == 429
        assert batch["Retry-After"] == "1"
        consume = api.post(
            "/api/v1/entitlements/consume",
            {"id": "a6", "customer": "u1", "feature": "calls"},
            key=tenant_a.key,
        )
        assert consume.status_code == 429
        # Reads are not usage intake: the project's limit leaves them alone.
        assert api.get("/api/v1/usage?customer=u1&feature=calls", key=tenant_a.key).status_code == 200
        # Tenant B, in the same second, has a budget of its own.
        assert [_usage(api, tenant_b.key, f"b{i}").status_code for i in range(3)] == [201, 201, 201]

    # Nothing of the refused requests happened.
    assert sorted(UsageEvent.objects.filter(project=tenant_a.project).values_list("event_id", flat=True)) == [
        "a1",
        "a2",
        "a3",
    ]
    assert UsageEvent.objects.filter(project=tenant_b.project).count() == 3
    assert _throttled_lines(client) == ['tollgate_project_throttled_requests_total{project="alpha"} 3.0']

    # The next second, A's budget is whole again.
    with time_machine.travel(FROZEN.replace(second=10), tick=False):
        assert _usage(api, tenant_a.key, "a7").status_code == 201


@override_settings(PROJECT_USAGE_RATE_LIMIT_PER_SECOND=0, API_RATE_LIMIT_PER_MINUTE=0)
def test_no_project_limit_when_set_to_zero(api, client, tenant_a, metered):
    with time_machine.travel(FROZEN, tick=False):
        assert {_usage(api, tenant_a.key, f"z{i}").status_code for i in range(5)} == {201}
    assert _throttled_lines(client) == []
