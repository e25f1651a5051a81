"""Prometheus figures of payments, subscriptions and reconciliation, read from the database at scrape time.

Registered by `BillingConfig.ready()`; `/metrics` (core.prometheus) exports them with the rest. Read at scrape
time rather than counted in process memory, so every web process reports the same figures.
"""

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from billing.models import Drift, Payment, Refund, Subscription


class BillingCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The metric names, without touching the database (registration happens at start-up)."""
        yield GaugeMetricFamily(
            "tollgate_reconciliation_drift_open", "Drift found by reconciliation and not fixed."
        )
        yield GaugeMetricFamily("tollgate_payments", "Payments by status.")
        yield GaugeMetricFamily("tollgate_subscriptions", "Subscriptions by status.")
        yield GaugeMetricFamily("tollgate_refunds", "Refunds by status, as Stripe has them.")

    def collect(self) -> Iterator[GaugeMetricFamily]:
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

        # `unknown`: asked, Stripe's answer lost and not yet read back (the settle sweep reads it within
        # minutes); a count that stays above 0 means Stripe cannot be read.
        refunds = GaugeMetricFamily(
            "tollgate_refunds", "Refunds by status, as Stripe has them.", labels=["status"]
        )
        for row in Refund.objects.values("status").annotate(n=Count("id")):
            refunds.add_metric([row["status"]], row["n"])
        yield refunds
