"""`GET /metrics`: Prometheus exposition with request metrics and Tollgate's own figures."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Drift, ReconciliationRun
from events.models import Delivery
from tests.billing.payment_factories import PaymentFactory, SubscriptionFactory
from tests.events.factories import EventFactory, WebhookEndpointFactory
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


_DATABASE_FIGURES = (
    "tollgate_stripe_event",
    "tollgate_webhook_",
    "tollgate_reconciliation_",
    "tollgate_payments",
    "tollgate_subscriptions",
)


def _families(text):
    """The exposition's `tollgate_*` families read at scrape time: name → its HELP, TYPE and sample lines."""
    families: dict[str, list[str]] = {}
    for line in text.splitlines():
        name = line.split()[2] if line.startswith("#") else line.split("{")[0].split(" ")[0]
        if name.startswith(_DATABASE_FIGURES):
            families.setdefault(name.removesuffix("_total"), []).append(line)
    # HELP and TYPE first, then the samples sorted: the database groups rows in any order.
    return {name: sorted(lines, key=_sample_order) for name, lines in families.items()}


def _sample_order(line):
    return (False, "") if line.startswith("#") else (True, line)


def test_metrics_expose_every_database_figure_exactly(client, tenant_a, tenant_b):
    for status in ("succeeded", "succeeded", "failed"):
        PaymentFactory(project=tenant_a.project, status=status)
    SubscriptionFactory(project=tenant_b.project, status="active")
    now = timezone.now()
    for n, (status, conflicts, took) in enumerate(
        [("processed", 1, 2.0), ("processed", 0, 3.0), ("failed", 2, None), ("received", 0, None)]
    ):
        event = StripeEvent.objects.create(
            account="platform",
            stripe_event_id=f"evt_x{n}",
            type="x",
            stripe_created=1,
            payload={},
            status=status,
            conflicts=conflicts,
        )
        if took is not None:
            StripeEvent.objects.filter(pk=event.pk).update(
                received_at=now - timedelta(seconds=took), processed_at=now
            )
    endpoint = WebhookEndpointFactory(project=tenant_a.project)
    for status in ("pending", "failed", "failed"):
        Delivery.objects.create(
            project=tenant_a.project,
            event=EventFactory(project=tenant_a.project),
            endpoint=endpoint,
            status=status,
            last_attempt_at=None if status == "pending" else now,
        )
    run = ReconciliationRun.objects.create(project=tenant_a.project)
    for status in ("open", "failed", "fixed"):
        Drift.objects.create(
            run=run,
            project=tenant_a.project,
            kind="missing_locally",
            object_type="x",
            stripe_id=f"x_{status}",
            status=status,
        )

    families = _families(client.get("/metrics").content.decode())

    assert families == {
        "tollgate_stripe_events": [
            "# HELP tollgate_stripe_events Stored Stripe events by status: received, processing and failed ones "
            "all; processed and ignored ones, those finished in the last hour.",
            "# TYPE tollgate_stripe_events gauge",
            'tollgate_stripe_events{status="failed"} 1.0',
            'tollgate_stripe_events{status="processed"} 2.0',
            'tollgate_stripe_events{status="received"} 1.0',
        ],
        "tollgate_stripe_event_processing_seconds": [
            "# HELP tollgate_stripe_event_processing_seconds Mean time from receipt to processed, over events "
            "processed in the last hour.",
            "# TYPE tollgate_stripe_event_processing_seconds gauge",
            "tollgate_stripe_event_processing_seconds 2.5",
        ],
        "tollgate_stripe_event_conflicts": [
            "# HELP tollgate_stripe_event_conflicts_total Deadlocks and serialization failures met applying Stripe "
            "events (each retried at once).",
            "# TYPE tollgate_stripe_event_conflicts_total counter",
            "tollgate_stripe_event_conflicts_total 3.0",
        ],
        "tollgate_webhook_deliveries": [
            "# HELP tollgate_webhook_deliveries Outbound deliveries by status: pending ones all; succeeded and "
            "failed (given up) ones, those whose last attempt was in the last hour.",
            "# TYPE tollgate_webhook_deliveries gauge",
            'tollgate_webhook_deliveries{status="failed"} 2.0',
            'tollgate_webhook_deliveries{status="pending"} 1.0',
        ],
        "tollgate_reconciliation_drift_open": [
            "# HELP tollgate_reconciliation_drift_open Drift found by reconciliation and not fixed.",
            "# TYPE tollgate_reconciliation_drift_open gauge",
            "tollgate_reconciliation_drift_open 2.0",
        ],
        "tollgate_payments": [
            "# HELP tollgate_payments Payments by status.",
            "# TYPE tollgate_payments gauge",
            'tollgate_payments{status="failed"} 1.0',
            'tollgate_payments{status="succeeded"} 2.0',
        ],
        "tollgate_subscriptions": [
            "# HELP tollgate_subscriptions Subscriptions by status.",
            "# TYPE tollgate_subscriptions gauge",
            'tollgate_subscriptions{status="active"} 1.0',
        ],
    }


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
    from core.errors import ApiError
    from stripe_gateway.gateway import platform_gateway

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


def test_metrics_in_multiprocess_mode_sum_the_workers_files_and_keep_the_database_figures(
    client, tenant_a, tmp_path, monkeypatch
):
    """With PROMETHEUS_MULTIPROC_DIR (web's gunicorn workers), a scrape reads every worker's counts from the
    directory, and Tollgate's figures read from the database are still there (prometheus_client's multiprocess
    registry holds nothing else unless added)."""
    from prometheus_client import CollectorRegistry, Counter, values

    PaymentFactory(project=tenant_a.project, status="succeeded")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    # Two workers' counts, written as prometheus_client writes them in multiprocess mode.
    for pid in (101, 102):
        monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda pid=pid: pid))
        counter = Counter("tollgate_test_worker_requests", "test", registry=CollectorRegistry())
        counter.inc(pid - 100)
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "tollgate_test_worker_requests_total 3.0" in text
    assert 'tollgate_payments{status="succeeded"} 1.0' in text
