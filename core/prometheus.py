"""Prometheus metrics of Tollgate's own, computed from the database at scrape time.

Read at scrape time rather than counted in process memory, so every web process reports the same figures
(gunicorn runs several) and nothing is lost on a restart. Request metrics come from django-prometheus.
"""

import hmac
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Avg, Count, F, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django_prometheus.exports import ExportToDjangoView
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

WINDOW = timedelta(hours=1)
_COUNTERS = {"tollgate_stripe_event_conflicts"}  # exposed with the `_total` suffix


_METRICS = [
    ("tollgate_stripe_events", "Stored Stripe events by status."),
    ("tollgate_stripe_event_processing_seconds", "Mean time from receipt to processed, over the last hour."),
    ("tollgate_stripe_event_conflicts", "Deadlocks and serialization failures met applying Stripe events."),
    ("tollgate_webhook_deliveries", "Outbound deliveries by status."),
    ("tollgate_reconciliation_drift_open", "Drift found by reconciliation and not fixed."),
    ("tollgate_payments", "Payments by status."),
    ("tollgate_subscriptions", "Subscriptions by status."),
]


class TollgateCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """The metric names, without touching the database (registration happens at start-up)."""
        for name, documentation in _METRICS:
            if name in _COUNTERS:
                yield CounterMetricFamily(name, documentation)
            else:
                yield GaugeMetricFamily(name, documentation)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        from billing.models import Drift, Payment, Subscription
        from webhooks.models import Delivery, StripeEvent

        events = GaugeMetricFamily(
            "tollgate_stripe_events", "Stored Stripe events by status.", labels=["status"]
        )
        for row in StripeEvent.objects.values("status").annotate(n=Count("id")):
            events.add_metric([row["status"]], row["n"])
        yield events

        recent = timezone.now() - WINDOW
        latency = StripeEvent.objects.filter(processed_at__gte=recent).aggregate(
            avg=Avg(F("processed_at") - F("received_at"))
        )["avg"]
        processing = GaugeMetricFamily(
            "tollgate_stripe_event_processing_seconds",
            "Mean time from receipt to processed, over events processed in the last hour.",
        )
        processing.add_metric([], latency.total_seconds() if latency else 0.0)
        yield processing

        # Each conflict was retried at once (webhooks.services); a steady rise means a lock order to fix.
        conflicts = CounterMetricFamily(
            "tollgate_stripe_event_conflicts",
            "Deadlocks and serialization failures met applying Stripe events (each retried at once).",
        )
        conflicts.add_metric([], StripeEvent.objects.aggregate(n=Sum("conflicts"))["n"] or 0)
        yield conflicts

        deliveries = GaugeMetricFamily(
            "tollgate_webhook_deliveries", "Outbound deliveries by status.", labels=["status"]
        )
        for row in Delivery.objects.values("status").annotate(n=Count("id")):
            deliveries.add_metric([row["status"]], row["n"])
        yield deliveries

        drift = GaugeMetricFamily(
            "tollgate_reconciliation_drift_open", "Drift found by reconciliation and not fixed."
        )
        drift.add_metric(
            [], Drift.objects.filter(status__in=(Drift.Status.OPEN, Drift.Status.FAILED)).count()
        )
        yield drift

        payments = GaugeMetricFamily("tollgate_payments", "Payments by status.", labels=["status"])
        for row in Payment.objects.values("status").annotate(n=Count("id")):
            payments.add_metric([row["status"]], row["n"])
        yield payments

        subscriptions = GaugeMetricFamily(
            "tollgate_subscriptions", "Subscriptions by status.", labels=["status"]
        )
        for row in Subscription.objects.values("status").annotate(n=Count("id")):
            subscriptions.add_metric([row["status"]], row["n"])
        yield subscriptions


def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`. With METRICS_TOKEN set, the scraper must send `Authorization: Bearer <token>`: the figures
    are business data, not for the public internet."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given, token):
            return HttpResponse("Forbidden", status=403, content_type="text/plain")
    return ExportToDjangoView(request)
