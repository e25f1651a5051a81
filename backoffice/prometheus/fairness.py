"""Prometheus figures of per-tenant fairness, by project: requests refused by a project's limit, Stripe events
and deliveries waiting their turn. Read at scrape time (the database; the refusals from the shared cache), so
every web process reports the same figures. Labelled by the project's slug: projects are few (never by customer
or endpoint, which are not)."""

from collections.abc import Iterator

from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from core.throttled import throttled_counts
from events.models import Delivery
from projects.models import Project
from webhooks.models import StripeEvent

PLATFORM = "platform"  # the label of platform events that name no project

THROTTLED_HELP = (
    "Usage requests refused with 429 by the project's limit (PROJECT_USAGE_RATE_LIMIT_PER_SECOND)."
)
STRIPE_HELP = "Stripe events stored and due, not yet applied, by the project whose share applies them."
DELIVERIES_HELP = "Outbound deliveries due and not yet sent (waiting their turn or a worker), by project."


class FairnessCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """The metric names, without touching the database (registration happens at start-up)."""
        yield CounterMetricFamily("tollgate_project_throttled_requests", THROTTLED_HELP)
        yield GaugeMetricFamily("tollgate_project_stripe_events_waiting", STRIPE_HELP)
        yield GaugeMetricFamily("tollgate_project_deliveries_waiting", DELIVERIES_HELP)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        slugs = dict(Project.objects.values_list("pk", "slug"))

        throttled = CounterMetricFamily(
            "tollgate_project_throttled_requests", THROTTLED_HELP, labels=["project"]
        )
        counts = throttled_counts(kind="usage", tenants=sorted(slugs))
        for pk, count in sorted(counts.items()):
            if count:
                throttled.add_metric([slugs[pk]], count)
        yield throttled

        now = timezone.now()
        due = Q(status=StripeEvent.Status.RECEIVED) & (
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
        )
        stripe = GaugeMetricFamily("tollgate_project_stripe_events_waiting", STRIPE_HELP, labels=["project"])
        for tenant, n in (
            StripeEvent.objects.filter(due)
            .order_by()
            .values("tenant")
            .annotate(n=Count("id"))
            .values_list("tenant", "n")
        ):
            stripe.add_metric([slugs.get(tenant, tenant) if tenant else PLATFORM], n)
        yield stripe

        deliveries = GaugeMetricFamily(
            "tollgate_project_deliveries_waiting", DELIVERIES_HELP, labels=["project"]
        )
        for project_id, n in (
            Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
            .order_by()
            .values("project_id")
            .annotate(n=Count("id"))
            .values_list("project_id", "n")
        ):
            deliveries.add_metric([slugs.get(project_id, str(project_id))], n)
        yield deliveries
