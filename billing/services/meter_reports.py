"""The Stripe-meter reporter: usage events entitlements marked reportable (`meter_status` pending) are reported to
Stripe in batches by a Celery task (`billing.tasks.usage_report_to_stripe`, queued by entitlements under its name
when it records them), our event id as Stripe's `identifier`, paced under Stripe's rate limit, retried with backoff
from the database, and picked up by the periodic sweep when never queued. Only the usage of customers with a live
subscription item on a metered price of the meter is reported (anyone else's would bill nobody: skipped). A
subscription item on the meter mirrored later takes back the customer's skipped usage of its current period since
Stripe began billing it — the item's creation, when it was added within the period
(`entitlements.services.meters.meter_events_unskip`, called by the subscription mirror), so that usage is billed.
A change that makes Stripe start a period on its own second (a change of billing interval, a cancel now) first
settles the customer's usage (`meter_usage_settle`), so usage counted in the old period is billed in it at Stripe
too, or is refused (503 `usage_not_reported`) while some of it cannot be reported. An event still to report when
Stripe has invoiced its period is never sent (the meter would take it into a period already billed): the customer's
next invoice bills it (`late_usage`).
"""

import logging
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing.models import Subscription, SubscriptionItem
from billing.services.late_usage import late_charge_bill, late_events, late_usage_charge
from billing.services.meter_corrections import (
    meter_corrected_events,
    meter_correction_apply,
    meter_corrections_due,
)
from catalog.models import Price
from core.db import in_transaction
from core.errors import ApiError, ProviderError
from entitlements.models import UsageEvent
from entitlements.services.meter_totals import meter_status_move
from entitlements.services.meters import meter_second
from projects.models import Project
from stripe_gateway.client import call_seconds_at_most
from stripe_gateway.gateway import gateway_for
from stripe_gateway.meter_events import meter_event_send

logger = logging.getLogger(__name__)


METER_BATCH = 1000
METER_MAX_ATTEMPTS = 8
# How long a batch sends for. Its events are claimed for that, plus the longest one Stripe call may take
# (`call_seconds_at_most`), plus a margin for the database work around it; it sends nothing once its time is over: the
# last send it starts ends within the claim, so a correction waiting out the claim never overtakes the report.
# Events it did not reach are due again at once.
METER_CLAIM_SECONDS = 120
METER_CLAIM_MARGIN_SECONDS = 30
METER_SETTLE_SECONDS = 5.0  # how long a switch or cancel waits for its customer's usage to reach Stripe


def meter_report_queue(*, project_id: str) -> None:
    """Queues the batched report of the project's pending meter events (called on commit)."""
    from billing.tasks import usage_report_to_stripe  # the task calls this module

    try:
        usage_report_to_stripe.delay(project_id)
    except Exception:  # the broker is down: the sweep reports them later
        logger.exception("Could not queue the meter report of %s; the sweep will send it.", project_id)


def meter_claim_seconds() -> float:
    """How long a report batch claims its events for: its sending time, one Stripe call's longest, a margin."""
    return METER_CLAIM_SECONDS + call_seconds_at_most() + METER_CLAIM_MARGIN_SECONDS


def _meter_backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 6 * 3600))


class _Pacer:
    """Keeps calls under `rate` per second in this process (Stripe's meter event limit is 1,000/s)."""

    def __init__(self, rate: int) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = time.monotonic()

    def wait(self) -> None:
        now = time.monotonic()
        if self.next_at > now:
            time.sleep(self.next_at - now)
        self.next_at = max(self.next_at, now) + self.interval


def meter_events_report(
    *, project_id: str, batch: int = METER_BATCH, customer_id: str | None = None, wait: bool = False
) -> int:
    """Reports up to `batch` due meter events of a project to Stripe, our event id as Stripe's `identifier` (a
    re-send is refused by Stripe as a duplicate, which counts as reported) and the second it counts in
    (`meter_second`) as its `timestamp`. Failures are retried with backoff from the database
    (`meter_next_attempt_at`); after METER_MAX_ATTEMPTS an event is `failed`. With `customer_id`: that customer's
    pending events, those waiting out a backoff too (a period is about to close on them); with `wait`, rows another
    worker is claiming are waited for, not skipped. Returns how many were claimed."""
    if in_transaction():
        raise RuntimeError("meter_events_report calls Stripe and must not run inside a transaction.")
    now, started = timezone.now(), time.monotonic()
    due = UsageEvent.objects.filter(
        project_id=project_id, meter_status=UsageEvent.MeterStatus.PENDING
    ).exclude(pk__in=meter_corrected_events(project_id=project_id))  # a correction reports those
    due = due.filter(customer_id=customer_id) if customer_id else due.filter(meter_next_attempt_at__lte=now)
    with transaction.atomic():
        ids = list(
            due.select_for_update(skip_locked=not wait)
            .order_by("meter_next_attempt_at")
            .values_list("pk", flat=True)[:batch]
        )
        UsageEvent.objects.filter(pk__in=ids).update(
            meter_next_attempt_at=now + timedelta(seconds=meter_claim_seconds())
        )
    sending_until = started + METER_CLAIM_SECONDS  # from the instant the claim counts from
    if not ids:
        return 0
    project = Project.objects.get(pk=project_id)
    gateway = gateway_for(project)
    pacer = _Pacer(settings.STRIPE_METER_EVENTS_PER_SECOND)
    reported: list[str] = []
    skipped: list[str] = []
    unbilled: list[str] = []
    paid: list[str] = []  # paid whole from credits (a credits waterfall): nothing for the meter to bill
    voided: list[str] = []  # 0 units (recorded so, or voided before it was ever sent: `usage_corrections`)
    loaded = {e.pk: e for e in UsageEvent.objects.filter(pk__in=ids).select_related("customer", "feature")}
    events = [loaded[pk] for pk in ids if pk in loaded]  # the longest due first
    billable = _metered_items_of(events)
    late = late_events(events, now)
    charged: list[str] = []  # their period invoiced: billed on the next invoice, never sent to the meter
    released: list[str] = []  # not reached within the batch's time (METER_CLAIM_SECONDS): due again now
    for event in events:
        if not event.customer.stripe_customer_id:
            skipped.append(event.pk)
            continue
        if (event.customer_id, event.feature_id) not in billable:
            unbilled.append(event.pk)
            continue
        if event.quantity == 0:
            voided.append(event.pk)
            continue
        if event.covered and event.quantity == event.covered:
            paid.append(event.pk)
            continue
        if event.pk in late:
            charged.append(event.pk)
            continue
        if time.monotonic() < sending_until:
            pacer.wait()
        if time.monotonic() >= sending_until:  # its send could outlast the claim: the next batch sends it
            released.append(event.pk)
            continue
        try:
            meter_event_send(
                gateway,
                event_name=event.feature.stripe_meter_event_name,
                stripe_customer=event.customer.stripe_customer_id,
                value=event.quantity - event.covered,  # the units credits paid are not billed
                identifier=event.pk,
                second=meter_second(event.timestamp),
                idem=f"meter_event:{event.pk}",
            )
        except ApiError as exc:
            if "already exists" in exc.message:
                reported.append(event.pk)
                continue
            attempts = event.meter_attempts + 1
            meter_status_move(
                event_ids=[event.pk],
                status=(
                    UsageEvent.MeterStatus.FAILED
                    if attempts >= METER_MAX_ATTEMPTS
                    else UsageEvent.MeterStatus.PENDING
                ),
                meter_attempts=attempts,
                meter_error=exc.message[:500],
                meter_next_attempt_at=timezone.now() + _meter_backoff(attempts),
            )
            continue
        reported.append(event.pk)
    done = timezone.now()
    # Each status change moves the events' quantities between their period totals in the same transaction.
    meter_status_move(
        event_ids=reported,
        status=UsageEvent.MeterStatus.REPORTED,
        meter_reported_at=done,
        meter_attempts=F("meter_attempts") + 1,
        meter_error="",
        meter_next_attempt_at=None,
    )
    meter_status_move(
        event_ids=skipped,
        status=UsageEvent.MeterStatus.SKIPPED,
        meter_error="The customer has no Stripe customer to bill.",
        meter_next_attempt_at=None,
    )
    meter_status_move(
        event_ids=unbilled,
        status=UsageEvent.MeterStatus.SKIPPED,
        meter_error="The customer has no live subscription item on a metered price of this meter.",
        meter_next_attempt_at=None,
    )
    meter_status_move(
        event_ids=paid,
        status=UsageEvent.MeterStatus.SKIPPED,
        meter_error="Paid from credits: nothing to bill.",
        meter_next_attempt_at=None,
    )
    meter_status_move(
        event_ids=voided,
        status=UsageEvent.MeterStatus.SKIPPED,
        meter_error="0 units: nothing to bill.",
        meter_next_attempt_at=None,
    )
    UsageEvent.objects.filter(pk__in=released, meter_status=UsageEvent.MeterStatus.PENDING).update(
        meter_next_attempt_at=timezone.now()
    )
    for event_id in charged:
        charge = late_usage_charge(event_id=event_id, period_end=late[event_id])
        if charge is not None:
            late_charge_bill(charge_id=charge.pk)
    return len(ids)


def meter_usage_settle(*, subscription: Subscription) -> None:
    """Before a request that makes Stripe start the subscription's period on the request's own second (a change of
    billing interval, a cancel now with its final invoice): the customer's pending usage is reported now, so the
    cut-short period's invoice, drafted with the request, bills it (reported later it would fall in a period
    already invoiced: billed by nobody). Reports batch after batch, waiting for events another worker is claiming,
    until none of the subscription's meters has any pending, within METER_SETTLE_SECONDS; if some remain (Stripe's
    meter failing, too many to send in time) the request is refused with a retryable 503 `usage_not_reported`
    before anything is sent to Stripe for it. Then, when usage was recorded in the current second, the request
    waits for the next one: Stripe files a meter event under its whole second and the new period starts on the
    request's, so usage recorded earlier in that same second would fall in the new period while Tollgate counted
    it in the old one (#49)."""
    if in_transaction():
        raise RuntimeError("meter_usage_settle calls Stripe and must not run inside a transaction.")
    deadline = time.monotonic() + METER_SETTLE_SECONDS
    pending = _pending_on_meters(subscription)
    while pending:
        for correction_id in meter_corrections_due(customer_id=subscription.customer_id):
            meter_correction_apply(correction_id=correction_id)
        meter_events_report(
            project_id=subscription.project_id, customer_id=subscription.customer_id, wait=True
        )
        left = _pending_on_meters(subscription)
        if left and (left >= pending or time.monotonic() >= deadline):
            raise ProviderError(
                "This customer's recorded usage could not all be reported to Stripe's meter yet, so the change was "
                "not made (its invoice would miss that usage); retry shortly.",
                code="usage_not_reported",
                status_code=503,
            )
        pending = left
    second = meter_second(timezone.now())
    recent = UsageEvent.objects.filter(
        customer_id=subscription.customer_id,
        meter_status__in=(UsageEvent.MeterStatus.REPORTED, UsageEvent.MeterStatus.PENDING),
        timestamp__gte=datetime.fromtimestamp(second, UTC),
    ).exists()
    if recent:
        # One wait, not a loop: a clock that stands still (a frozen test) must not hang the request.
        time.sleep(max(0.0, second + 1 - time.time()))


def _pending_on_meters(subscription: Subscription) -> int:
    """How many of the customer's usage events on the subscription's metered items' meters are still to report."""
    meters = SubscriptionItem.objects.filter(
        subscription=subscription, usage_type=Price.UsageType.METERED, price__meter_id__isnull=False
    ).values_list("price__meter_id", flat=True)
    return UsageEvent.objects.filter(
        customer_id=subscription.customer_id,
        feature_id__in=list(meters),
        meter_status=UsageEvent.MeterStatus.PENDING,
    ).count()


def _metered_items_of(events: list[UsageEvent]) -> set[tuple[str, str]]:
    """(customer, feature) pairs among `events` that Stripe bills: the customer has a live subscription with a
    metered item whose price bills that feature's meter. Usage of anyone else would be reported to bill nobody."""
    pairs = SubscriptionItem.objects.filter(
        subscription__customer_id__in={event.customer_id for event in events},
        subscription__status__in=Subscription.LIVE_STATUSES,
        usage_type=Price.UsageType.METERED,
        price__meter_id__in={event.feature_id for event in events},
    ).values_list("subscription__customer_id", "price__meter_id")
    return {(customer_id, feature_id) for customer_id, feature_id in pairs if feature_id is not None}


def meter_projects_due() -> list[str]:
    """Projects with meter events due for (another) report: what the periodic sweep visits."""
    return list(
        UsageEvent.objects.filter(
            meter_status=UsageEvent.MeterStatus.PENDING, meter_next_attempt_at__lte=timezone.now()
        )
        .values_list("project_id", flat=True)
        .distinct()
    )
