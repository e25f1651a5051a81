"""`GET /metrics`: Prometheus exposition with request metrics and Tollgate's own figures."""

from tests.billing.payment_factories import PaymentFactory
from webhooks.models import StripeEvent


def test_metrics_expose_tollgate_figures(client, tenant_a):
    PaymentFactory(project=tenant_a.project, status="succeeded")
    StripeEvent.objects.create(
        account="platform", stripe_event_id="evt_m1", type="x", stripe_created=1, payload={}, status="failed"
    )
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'tollgate_payments{status="succeeded"} 1.0' in text
    assert 'tollgate_stripe_events{status="failed"} 1.0' in text
    assert "tollgate_reconciliation_drift_open 0.0" in text
    assert "django_http_requests_total_by_method_total" in text


def test_metrics_token_is_required_when_configured(client, db, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200
