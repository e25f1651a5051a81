"""Reads of the project's test clocks (every selector takes the project)."""

from django.db.models import QuerySet

from billing.models import TestClock
from core.errors import NotFound
from projects.models import Project


def clock_list(*, project: Project) -> QuerySet[TestClock]:
    return TestClock.objects.filter(project=project).prefetch_related("customers")


def clock_get(*, project: Project, test_clock_id: str, param: str | None = None) -> TestClock:
    """One of the project's clocks by our id; another project's clock is a missing one (404)."""
    clock = clock_list(project=project).filter(pk=test_clock_id).first()
    if clock is None:
        raise NotFound(f"No such test clock: {test_clock_id!r}.", param=param)
    return clock


def clock_customer_ids(*, clock: TestClock) -> list[str]:
    """The external ids of the customers on the clock, oldest first (from the prefetch when there is one)."""
    return [c.external_id for c in sorted(clock.customers.all(), key=lambda c: (c.created_at, c.pk))]
