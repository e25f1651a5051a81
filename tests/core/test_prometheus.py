"""`GET /metrics`: Prometheus exposition with request metrics and Tollgate's own figures."""

import pytest

from tests.billing.payment_factories import PaymentFactory
from webhooks.models import StripeEvent


def test_metrics_expose_tollgate_figures(client, tenant_a):
    PaymentFactory(project=tenant_a.project, status="succeeded")
    StripeEvent.objects.create(
        account="platform", stripe_event_id="evt_m1", type="x", stripe_created=1, payload={}, status="failed"
    )
    StripeEvent.objects.create(
        account="platform", stripe_event_id="evt_m2", type="x", stripe_created=1, payload={}, conflicts=2
    )
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'tollgate_payments{status="succeeded"} 1.0' in text
    assert 'tollgate_stripe_events{status="failed"} 1.0' in text
    assert "tollgate_reconciliation_drift_open 0.0" in text
    assert "tollgate_stripe_event_conflicts_total 2.0" in text
    assert "django_http_requests_total_by_method_total" in text


def test_metrics_token_is_required_when_configured(client, db, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200


def _sample(text, name):
    lines = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(lines[0].split()[-1]) if lines else 0.0


def test_entitlement_checks_by_cache_outcome_and_stripe_errors_are_counted(
    client, api, tenant_a, stripe_emulator
):
    from billing.gateway import platform_gateway
    from core.errors import ApiError

    before = client.get("/metrics").content.decode()
    api.post("/api/v1/features", {"key": "sso", "name": "SSO", "type": "boolean"}, key=tenant_a.key)
    for _ in range(3):  # the first computes the snapshot, the next two are served from it
        assert (
            api.get("/api/v1/entitlements/check?customer=u1&feature=sso", key=tenant_a.key).status_code == 200
        )
    with pytest.raises(ApiError):
        platform_gateway().call(lambda c: c.v1.customers.retrieve("cus_missing"))
    after = client.get("/metrics").content.decode()
    for name, grew in (
        ('tollgate_entitlement_checks_total{cache="miss"}', 1.0),
        ('tollgate_entitlement_checks_total{cache="hit"}', 2.0),
        ('tollgate_stripe_api_errors_total{error="InvalidRequestError"}', 1.0),
    ):
        assert _sample(after, name) - _sample(before, name) == grew, name
