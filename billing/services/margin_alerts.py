"""Margin alerts (#54 point 4): `customer.margin_low`, once per customer, UTC month and currency, when what the
customer was billed for their usage this month leaves less margin over what that usage cost the tenant than the
project's threshold (`Project.margin_alert_below_bps`, basis points of what was billed; null: no alerts).

The figures are `margins_report`'s, grouped by customer (one row per currency: money is never summed across
currencies). A customer whose usage cost something and who was billed nothing (no margin in basis points:
`margin_bps` is null) is below any threshold; one whose usage cost nothing and billed nothing is not. A customer
billed in one currency for usage that cost in another (a cost table in dollars, prices in euros) has a row of cost
alone and one of money alone, which cannot be compared without exchange rates: the cost alone is not announced
(else every such customer would be, every month).

Each announcement is a `MarginAlert` row, unique per customer, month and currency, inserted in the transaction
that records the event: a re-run, a retry after a worker died between the two, or two workers at once announce
it once. Once announced, a month stays announced whatever its margin does afterwards or the threshold becomes.
The beat checks the current month every hour, and on a month's first day the month just ended too (its last
hour's usage, and usage recorded late with an earlier timestamp).
"""

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.models import MarginAlert
from billing.services.margins import MarginRow, margins_report
from customers.models import Customer
from events.services.record import event_record
from projects.models import Project

logger = logging.getLogger(__name__)

# How long after a month ends its margins are still checked.
LATE_USAGE = timedelta(days=1)


def margin_below(row: MarginRow, threshold_bps: int) -> bool:
    """Whether the row's margin is below `threshold_bps` basis points of what it billed: exactly (`margin_bps`
    is rounded toward −∞, and a whole threshold is above it iff it is above the exact share); with nothing
    billed, whether it cost anything."""
    if row.margin_bps is None:  # nothing billed
        return row.cost_micros > 0
    return row.margin_bps < threshold_bps


def _months(now: datetime) -> list[tuple[datetime, datetime]]:
    """The months to check at `now`, as [first instant, next month's first instant): the current one, and the
    one before during `LATE_USAGE` after it ended."""
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    months = [(start, (start + timedelta(days=32)).replace(day=1))]
    if now - start < LATE_USAGE:
        months.append(((start - timedelta(days=1)).replace(day=1), start))
    return months


def margin_alert_payload(row: MarginRow, threshold_bps: int) -> dict[str, Any]:
    """`customer.margin_low`'s data object."""
    return {
        "customer": row.customer,
        "period": row.period,
        "currency": row.currency,
        "billed_micros": row.billed_micros,
        "cost_micros": row.cost_micros,
        "margin_micros": row.margin_micros,
        "margin_bps": row.margin_bps,
        "threshold_bps": threshold_bps,
    }


def margin_alerts_check(*, project: Project, now: datetime | None = None) -> int:
    """Announces `customer.margin_low` for each of the project's customers whose margin in a month being checked
    is below the project's threshold and was not announced yet, each in its own transaction; how many."""
    threshold = project.margin_alert_below_bps
    if threshold is None:
        return 0
    announced = 0
    for start, end in _months(now or timezone.now()):
        report = margins_report(project=project, start=start, end=end, group_by=("customer",))
        billed = {row.customer for row in report if row.billed_micros}
        rows = [
            row
            for row in report
            if margin_below(row, threshold) and (row.billed_micros or row.customer not in billed)
        ]
        if not rows:
            continue
        done = set(
            MarginAlert.objects.filter(project=project, period=f"{start:%Y-%m}").values_list(
                "customer__external_id", "currency"
            )
        )
        rows = [row for row in rows if (row.customer, row.currency) not in done]
        customers = dict(
            Customer.objects.filter(
                project=project, external_id__in={row.customer for row in rows}
            ).values_list("external_id", "pk")
        )
        for row in rows:
            customer_id = customers.get(str(row.customer))
            if customer_id is not None:  # else erased since the report read it
                announced += _announce(project, customer_id, row, threshold)
    return announced


def _announce(project: Project, customer_id: str, row: MarginRow, threshold: int) -> int:
    with transaction.atomic(durable=True):
        # A worker racing this one waits here on the unique key until the other commits, then finds its row.
        _, created = MarginAlert.objects.get_or_create(
            customer_id=customer_id,
            period=row.period,
            currency=row.currency,
            defaults={
                "project": project,
                "billed_micros": row.billed_micros,
                "cost_micros": row.cost_micros,
                "margin_bps": row.margin_bps,
                "threshold_bps": threshold,
            },
        )
        if not created:
            return 0
        event_record(
            project=project, type="customer.margin_low", data_object=margin_alert_payload(row, threshold)
        )
    return 1


def margin_alerts_sweep(*, now: datetime | None = None) -> int:
    """The beat's run: `margin_alerts_check` of every active project with a threshold; how many it announced.
    A project whose check fails is logged and the others are still checked (the next run tries it again)."""
    announced = 0
    projects = Project.objects.filter(
        margin_alert_below_bps__isnull=False, status=Project.Status.ACTIVE
    ).order_by("pk")
    for project in projects:
        try:
            announced += margin_alerts_check(project=project, now=now)
        except Exception:
            logger.exception("Margin alerts of project %s failed; the next run checks it again.", project.pk)
    return announced
