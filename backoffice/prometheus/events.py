"""Prometheus figures of the Stripe inbox and outbound deliveries, read from the database at scrape time.

Registered by `WebhooksConfig.ready()`; `/metrics` (core.prometheus) exports them with the rest. Read at scrape
time rather than counted in process memory, so every web process reports the same figures.

Every figure reads a bounded set of rows through an index, never a whole table: the rows still at work (Stripe
events `received`, `processing`, `failed`; deliveries `pending`), whose number the pipeline keeps small, each
counted by status; the rows that finished within the last hour (WINDOW); and the few events that met a conflict.
"""

from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Avg, Count, F, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from events.models import Delivery
from webhooks.models import StripeEvent, StripeEventsPruned

WINDOW = timedelta(hours=1)
AT_WORK = (StripeEvent.Status.RECEIVED, StripeEvent.Status.PROCESSING, StripeEvent.Status.FAILED)
FINISHED = (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED)
EVENTS_HELP = (
    "Stored Stripe events by status: received, processing and failed ones all; processed and ignored ones, "
    "those finished in the last hour."
)
DELIVERIES_HELP = (
    "Outbound deliveries by status: pending ones all; succeeded and failed (given up) ones, those whose last "
    "attempt was in the last hour."
)


class WebhooksCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """The metric names, without touching the database (registration happens at start-up)."""
        yield GaugeMetricFamily("tollgate_stripe_events", EVENTS_HELP)
        yield GaugeMetricFamily(
            "tollgate_stripe_event_processing_seconds",
            "Mean time from receipt to processed, over the last hour.",
        )
        yield CounterMetricFamily(
            "tollgate_stripe_event_conflicts",
            "Deadlocks and serialization failures met applying Stripe events.",
        )
        yield GaugeMetricFamily("tollgate_webhook_deliveries", DELIVERIES_HELP)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        recent = timezone.now() - WINDOW
        events = GaugeMetricFamily("tollgate_stripe_events", EVENTS_HELP, labels=["status"])
        # (status, updated_at): the statuses still at work whole, the finished ones of the last hour.
        counted = (
            StripeEvent.objects.filter(Q(status__in=AT_WORK) | Q(status__in=FINISHED, updated_at__gte=recent))
            .order_by()
            .values("status")
            .annotate(n=Count("id"))
        )
        for row in counted:
            events.add_metric([row["status"]], row["n"])
        yield events

        # updated_at is set with processed_at (and after it): the index reads the last hour's rows only.
        latency = StripeEvent.objects.filter(
            status__in=FINISHED, updated_at__gte=recent, processed_at__gte=recent
        ).aggregate(avg=Avg(F("processed_at") - F("received_at")))["avg"]
        processing = GaugeMetricFamily(
            "tollgate_stripe_event_processing_seconds",
            "Mean time from receipt to processed, over events processed in the last hour.",
        )
        processing.add_metric([], latency.total_seconds() if latency else 0.0)
        yield processing

        # Each conflict was retried at once (webhooks.services.process); a steady rise means a lock order to fix.
        # The events kept that met one (a partial index), and those retention pruned (StripeEventsPruned).
        conflicts = CounterMetricFamily(
            "tollgate_stripe_event_conflicts",
            "Deadlocks and serialization failures met applying Stripe events (each retried at once).",
        )
        kept = StripeEvent.objects.filter(conflicts__gt=0).aggregate(n=Sum("conflicts"))["n"] or 0
        pruned = StripeEventsPruned.objects.values_list("conflicts", flat=True).first() or 0
        conflicts.add_metric([], kept + pruned)
        yield conflicts

        deliveries = GaugeMetricFamily("tollgate_webhook_deliveries", DELIVERIES_HELP, labels=["status"])
        # (status, next_attempt_at) for the pending ones, (status, last_attempt_at) for the last hour's finished.
        for row in (
            Delivery.objects.filter(
                Q(status=Delivery.Status.PENDING)
                | Q(
                    status__in=(Delivery.Status.SUCCEEDED, Delivery.Status.FAILED),
                    last_attempt_at__gte=recent,
                )
            )
            .order_by()
            .values("status")
            .annotate(n=Count("id"))
        ):
            deliveries.add_metric([row["status"]], row["n"])
        yield deliveries
