"""Usage marked reportable to a Stripe meter: entitlements records metered usage as `pending` and says so by
queueing the report under its task name (`meter_report_queue`); billing's reporter (`billing.services.meter_reports`,
registered under that name) sweeps what is pending and reports it to Stripe. A subscription item on the meter
mirrored later (the subscription started at Stripe a moment before Tollgate saw it, or the item was added) takes
back the customer's skipped usage of its current period (`meter_events_unskip`, called by billing's mirror), so
that usage is billed. `meter_second` is the one rule for which period an event counts in, here and at Stripe.
"""

import logging
import math
from datetime import datetime, timedelta
from functools import partial

from celery import current_app
from django.db import transaction
from django.utils import timezone

from customers.models import Customer
from entitlements.models import UsageEvent
from entitlements.services.meter_totals import meter_due_now

logger = logging.getLogger(__name__)

# Billing's reporter registers under this name (kept from when it lived here), and its meter correction under the
# second (`services.usage_corrections`); entitlements only names them.
METER_REPORT_TASK = "entitlements.tasks.usage_report_to_stripe"
METER_CORRECTION_TASK = "billing.tasks.usage_correction_to_stripe"
# Stripe takes meter events up to 35 days old; skipped usage older than this (less an hour for the report to
# run) is left skipped: Stripe would refuse it.
METER_EVENT_MAX_AGE = timedelta(days=35) - timedelta(hours=1)


def meter_second(moment: datetime) -> int:
    """The whole second Stripe files usage at `moment` under: a meter event's `timestamp` is whole seconds (the
    fraction dropped) and a period [start, end) bills the events with start <= timestamp < end, its bounds whole
    seconds too. Usage counts in the period holding this second, here as at Stripe."""
    return math.floor(moment.timestamp())


def meter_report_queue(*, project_id: str) -> None:
    """The project has usage pending for its Stripe meters: queues its report (called on commit)."""
    _queue(METER_REPORT_TASK, project_id)


def meter_correction_queue(*, correction_id: str) -> None:
    """A usage correction needs Stripe corrected (its meter, or the next invoice): queues it (called on commit)."""
    _queue(METER_CORRECTION_TASK, correction_id)


def _queue(task: str, key: str) -> None:
    try:
        current_app.signature(task, args=(key,)).delay()
    except Exception:  # the broker is down: beat's meter sweep sends it later
        logger.exception("Could not queue %s(%s); the sweep will send it.", task, key)


def meter_events_unskip(
    *, customer_id: str, feature_id: str, period_start: datetime, period_end: datetime
) -> int:
    """A subscription item billing `feature_id`'s meter was mirrored for the customer: their usage of the
    meter in the item's current period [`period_start`, `period_end`) that was skipped (recorded before the item
    was known here) is pending again, and its report queued on commit. Runs in the caller's transaction (the
    mirror's). Returns how many events were taken back."""
    now = timezone.now()
    start = max(period_start, now - METER_EVENT_MAX_AGE)
    skipped = UsageEvent.objects.filter(
        customer_id=customer_id,
        feature_id=feature_id,
        timestamp__gte=start,
        timestamp__lt=period_end,
        meter_status=UsageEvent.MeterStatus.SKIPPED,
    ).values_list("pk", flat=True)
    # back to their periods' pending totals
    taken = meter_due_now(event_ids=list(skipped), now=now, only_from=UsageEvent.MeterStatus.SKIPPED)
    if taken:
        project_id = Customer.objects.filter(pk=customer_id).values_list("project_id", flat=True).get()
        transaction.on_commit(partial(meter_report_queue, project_id=project_id))
    return taken
