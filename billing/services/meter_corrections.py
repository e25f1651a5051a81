"""Stripe's meter, corrected after a usage correction (`entitlements.services.usage_corrections`) of an event it
may hold: a meter event adjustment cancels each meter event the usage event was sent as (its own id, then each
earlier correction's replacement — every earlier correction that may have written one, since a worker may have
died between its replacement and recording it), and, for an amount left, a replacement meter event under the correction's id
carries it, at the event's second. Where Stripe had invoiced the event (and the tenant asked for it), a pending
invoice item adjusts the customer's next invoice instead (`_invoice_adjust`). Every write carries a key derived from the correction and the identifier, so a
retry whose answer was lost is Stripe's replay.

Only the latest correction of an event writes (an earlier one still pending is superseded: the latest cancels
what it may have sent), and never while a meter report of the event or an earlier correction's writes may be in
flight (their claims): a cancellation must not overtake the meter event it cancels. A correction claims its
event while it writes (`claim_seconds`: as long as its Stripe calls may take); the event's meter status says, once
it is done, what Stripe bills (reported) or that nothing is left (skipped).

An `allowance` correction (Tollgate's own: units of an event the meter holds, which credits paid and allowance
another correction freed pays now) adds them as a meter event of its own under its id and cancels nothing; a
later correction of the event cancels it with the rest.
"""

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.db import in_transaction
from core.errors import ApiError
from entitlements.models import UsageCorrection, UsageEvent
from entitlements.services.meter_totals import meter_status_move
from entitlements.services.meters import meter_second
from projects.models import Project
from stripe_gateway.client import call_seconds_at_most
from stripe_gateway.gateway import gateway_for
from stripe_gateway.invoice_items import next_invoice_item_create
from stripe_gateway.meter_events import meter_event_cancel, meter_event_send

CLAIM_MARGIN_SECONDS = 30  # a claim's time beyond its Stripe calls: the database work around them
RETRY_SECONDS = 30.0  # after a failed write: the sweep's period


def meter_correction_apply(*, correction_id: str) -> float | None:
    """Corrects Stripe's meter for one correction; returns None when it is done (or superseded), else how many
    seconds to wait before trying again (a report or an earlier correction is in flight)."""
    if in_transaction():
        raise RuntimeError("meter_correction_apply calls Stripe and must not run inside a transaction.")
    if UsageCorrection.objects.filter(pk=correction_id, adjustment_status="pending").exists():
        return _invoice_adjust(correction_id)
    now = timezone.now()
    with transaction.atomic():
        correction = (
            UsageCorrection.objects.select_for_update().filter(pk=correction_id, meter="pending").first()
        )
        if correction is None:
            return None
        siblings = UsageCorrection.objects.filter(
            project_id=correction.project_id, usage_event_id=correction.usage_event_id
        )
        others = siblings.exclude(pk=correction.pk)
        if siblings.order_by("-created_at", "-pk").values_list("pk", flat=True).first() != correction.pk:
            return _settled(
                correction, now, "Superseded: a later correction of the event corrects the meter."
            )
        event = (
            UsageEvent.objects.select_for_update(of=("self",))
            .select_related("feature", "customer")
            .filter(pk=correction.usage_event_id, timestamp=correction.event_timestamp)
            .first()
        )
        if event is None:  # erased with its customer: nothing left to bill
            return _settled(correction, now, "")
        claimed: list[datetime] = [
            moment
            for moment in others.filter(meter_claimed_until__gt=now).values_list(
                "meter_claimed_until", flat=True
            )
            if moment is not None
        ]
        if (
            event.meter_status == UsageEvent.MeterStatus.PENDING
            and event.meter_next_attempt_at is not None
            and event.meter_next_attempt_at > now
            and event.meter_attempts == correction.meter_attempts_seen
        ):
            claimed.append(event.meter_next_attempt_at)  # the reporter may be sending it
        if correction.meter_claimed_until is not None and correction.meter_claimed_until > now:
            claimed.append(correction.meter_claimed_until)  # this correction's own writes, by another worker
        if claimed:
            return max((max(claimed) - now).total_seconds(), 1.0)
        earlier = list(
            others.exclude(meter=UsageCorrection.Meter.NONE)
            .order_by("created_at", "pk")
            .values_list("pk", flat=True)
        )
        correction.meter_claimed_until = now + timedelta(seconds=claim_seconds(writes=len(earlier) + 2))
        correction.save(update_fields=["meter_claimed_until"])
    try:
        left = _meter_write(correction, event, earlier)
    except ApiError as exc:  # Stripe refused, or could not be reached: the same keys again on the next try
        UsageCorrection.objects.filter(pk=correction.pk).update(
            meter_claimed_until=None, meter_error=exc.message[:500]
        )
        return RETRY_SECONDS
    done = timezone.now()
    with transaction.atomic():
        UsageCorrection.objects.filter(pk=correction.pk).update(
            meter=UsageCorrection.Meter.ADJUSTED,
            meter_adjusted_at=done,
            meter_claimed_until=None,
            meter_error="",
        )
        if left > 0:
            meter_status_move(
                event_ids=[event.pk],
                status=UsageEvent.MeterStatus.REPORTED,
                meter_reported_at=done,
                meter_error="",
                meter_next_attempt_at=None,
            )
        else:
            meter_status_move(
                event_ids=[event.pk],
                status=UsageEvent.MeterStatus.SKIPPED,
                meter_error=f"Voided by its correction {correction.correction_id}: canceled on Stripe's meter.",
                meter_next_attempt_at=None,
            )
    return None


def claim_seconds(*, writes: int) -> float:
    """How long a correction claims its event for: its `writes` Stripe calls (a cancel of the event and of each
    earlier correction's replacement, and its own replacement), each as long as one may take
    (`call_seconds_at_most`), and a margin. A worker finding the claim expired may take over: the first one's
    writes are over by then."""
    return writes * call_seconds_at_most() + CLAIM_MARGIN_SECONDS


def _settled(correction: UsageCorrection, now: datetime, error: str) -> float | None:
    """Nothing for this correction to write (superseded, or its event erased): done (None, as
    `meter_correction_apply` answers)."""
    correction.meter, correction.meter_adjusted_at, correction.meter_error = (
        UsageCorrection.Meter.ADJUSTED,
        now,
        error,
    )
    correction.save(update_fields=["meter", "meter_adjusted_at", "meter_error"])
    return None


def _invoice_adjust(correction_id: str) -> float | None:
    """Adjusts the customer's next invoice for a correction of usage Stripe had invoiced: one pending invoice item
    of the correction's amount (negative: a credit), which Stripe puts on the customer's next invoice, under a key
    of the correction (two workers, or a retry after a lost answer, make one)."""
    correction = UsageCorrection.objects.select_related("customer", "feature").get(pk=correction_id)
    change = f"{correction.quantity_before} → {correction.quantity_after} units"
    item, error = next_invoice_item_create(
        gateway_for(Project.objects.get(pk=correction.project_id)),
        customer=correction.customer.stripe_customer_id,
        amount=correction.adjustment_amount or 0,  # set with its pending adjustment_status
        currency=correction.adjustment_currency,
        description=f"Usage correction {correction.correction_id}: {correction.feature.name}, {change}",
        metadata={
            "tollgate_usage_correction": correction.correction_id,
            "tollgate_event": correction.event_id,
        },
        idem=f"usage_correction:{correction.pk}:invoice_item",
    )
    if error:
        UsageCorrection.objects.filter(pk=correction.pk).update(meter_error=error)
        return RETRY_SECONDS
    UsageCorrection.objects.filter(pk=correction.pk, adjustment_status="pending").update(
        adjustment_status="created",
        adjustment_item=item,
        meter_adjusted_at=timezone.now(),
        meter_error="",
    )
    return None


def _meter_write(correction: UsageCorrection, event: UsageEvent, earlier: list[str]) -> int:
    """Cancels each meter event the usage event was sent as, then sends what is left (if anything) under the
    correction's id (an `allowance` correction: sends the units it adds, cancelling nothing); returns what is
    left."""
    project = Project.objects.get(pk=correction.project_id)
    gateway = gateway_for(project)
    event_name = event.feature.stripe_meter_event_name
    if correction.action == UsageCorrection.Action.ALLOWANCE:
        # Units of an event the meter holds, which credits paid and freed allowance pays now: added to what it
        # holds, under the correction's id, whatever the event's age (Stripe cancels only within a day).
        meter_event_send(
            gateway,
            event_name=event_name,
            stripe_customer=event.customer.stripe_customer_id,
            value=correction.covered_before - correction.covered_after,
            identifier=correction.pk,
            second=meter_second(event.timestamp),
            idem=f"usage_correction:{correction.pk}:event",
        )
        return event.quantity - event.covered
    for identifier in [event.pk, *earlier]:
        meter_event_cancel(
            gateway,
            event_name=event_name,
            identifier=identifier,
            idem=f"usage_correction:{correction.pk}:cancel:{identifier}",
        )
    left = event.quantity - event.covered
    if left > 0:
        meter_event_send(
            gateway,
            event_name=event_name,
            stripe_customer=event.customer.stripe_customer_id,
            value=left,
            identifier=correction.pk,
            second=meter_second(event.timestamp),
            idem=f"usage_correction:{correction.pk}:event",
        )
    return left


def meter_corrections_due(*, customer_id: str | None = None) -> list[str]:
    """The corrections whose meter correction is still to do (the sweep queues each; a settle applies its
    customer's)."""
    now = timezone.now()
    pending = UsageCorrection.objects.filter(
        Q(meter=UsageCorrection.Meter.PENDING) | Q(adjustment_status=UsageCorrection.Adjustment.PENDING)
    )
    if customer_id is not None:
        pending = pending.filter(customer_id=customer_id)
    return list(
        pending.exclude(meter_claimed_until__gt=now)
        .order_by("created_at")
        .values_list("pk", flat=True)[:1000]
    )


def meter_corrected_events(*, project_id: str) -> QuerySet[UsageCorrection, Any]:
    """The project's usage events whose meter a pending correction answers for: the reporter leaves them."""
    return UsageCorrection.objects.filter(project_id=project_id, meter=UsageCorrection.Meter.PENDING).values(
        "usage_event_id"
    )
