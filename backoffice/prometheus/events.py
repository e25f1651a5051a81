"""Prometheus figures of the Stripe inbox and outbound deliveries, read from the database at scrape time.

Registered by `WebhooksConfig.ready()`; `/metrics` (core.prometheus) exports them with the rest. Read at scrape
time rather than counted in process memory, so every web process reports the same figures.
"""

from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Avg, Count, F, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from events.models import Delivery
from stripe_inbox.models import StripeEvent

WINDOW = timedelta(hours=1)


class WebhooksCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """The metric names, without touching the database (registration happens at start-up)."""
        yield GaugeMetricFamily("tollgate_stripe_events", "Stored Stripe events by status.")
        yield GaugeMetricFamily(
            "tollgate_stripe_event_processing_seconds",
            "Mean time from receipt to processed, over the last hour.",
        )
        yield CounterMetricFamily(
            "tollgate_stripe_event_conflicts",
            "Deadlocks and serialization failures met applying Stripe events.",
        )
        yield GaugeMetricFamily("tollgate_webhook_deliveries", "Outbound deliveries by status.")

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
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

        # Each conflict was retried at once (stripe_inbox.services.process); a steady rise means a lock order to fix.
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
