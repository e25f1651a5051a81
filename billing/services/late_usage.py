"""Usage Stripe's meter can no longer bill: a usage event still to report when Stripe invoiced its period (its
reports failed, or waited out a backoff, past the period's end). Stripe invoices a period's metered usage as the
period ends; a meter event sent later with a timestamp in that period is accepted, and billed by nobody. So the
reporter (`meter_reports.meter_events_report`) sends such an event nowhere near the meter: `late_usage_charge`
prices its units at the terms that billed the period — what the period's invoiced units plus these cost, less what
the invoiced units cost (`usage_corrections.invoice_adjustment`, as a correction of invoiced usage is priced) — and
records the charge with the event's move to reported, in one transaction under the period's counter lock (so the
period's late events are priced one after another, each on the units billed before it). `late_charge_bill` then
makes the pending invoice item Stripe puts on the customer's next invoice, under a key of the charge: a retry whose
answer was lost is Stripe's replay, one item. A charge whose item could not be made is retried with backoff by the
reporter's sweep (`late_charges_due`), a task per charge.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from billing.models import LateUsageCharge
from catalog.models import Price
from customers.selectors import customer_now
from entitlements.models import SubscriptionVersion, UsageCounter, UsageEvent
from entitlements.selectors import metered_price_of, period_in_trial
from entitlements.services.meter_totals import meter_status_move
from entitlements.services.meters import meter_second
from entitlements.services.usage_corrections import invoice_adjustment
from projects.models import Project
from stripe_gateway.gateway import gateway_for
from stripe_gateway.invoice_items import next_invoice_item_create

LATE_BILLED = "Reported after Stripe invoiced its period: billed on the customer's next invoice."
RETRY_SECONDS = 30


def late_events(events: list[UsageEvent], now: datetime) -> dict[str, datetime]:
    """The events among `events` whose period Stripe has invoiced, each with that period's end: a period of one
    of the customer's subscriptions (as the mirror recorded it, `SubscriptionVersion`) with a metered item on the
    event's meter holds the event's second, and ended at or before the customer's time (its test clock's, where
    it has one). One read of the periods that ended since the oldest event, for the whole batch."""
    if not events:
        return {}
    customers = {event.customer_id: event.customer for event in events}
    judged = {pk: customer_now(customer=customer, now=now) for pk, customer in customers.items()}
    ended: dict[str, list[tuple[datetime, datetime, list[dict[str, Any]]]]] = {}
    for customer_id, start, end, items in SubscriptionVersion.objects.filter(
        customer_id__in=list(customers),
        current_period_start__isnull=False,
        current_period_end__gt=min(event.timestamp for event in events),
        current_period_end__lte=max(judged.values()),
    ).values_list("customer_id", "current_period_start", "current_period_end", "items"):
        if start is not None and end is not None:
            ended.setdefault(customer_id, []).append((start, end, items or []))
    prices = {item["price"] for periods in ended.values() for *_, items in periods for item in items}
    meters = dict(Price.objects.filter(pk__in=prices).values_list("pk", "meter_id"))
    late = {}
    for event in events:
        second = datetime.fromtimestamp(meter_second(event.timestamp), UTC)
        for start, end, items in ended.get(event.customer_id, []):
            if (
                start <= second < end
                and end <= judged[event.customer_id]
                and any(
                    item.get("metered") and meters.get(item["price"]) == event.feature_id for item in items
                )
            ):
                late[event.pk] = end
                break
    return late


def late_usage_charge(*, event_id: str, period_end: datetime) -> LateUsageCharge | None:
    """Charges one late event (by primary key) on the next invoice and moves it to reported, in one transaction;
    None when it is no longer pending (another worker charged or reported it) or no live subscription bills its
    meter any more (then it is skipped, as the reporter skips such usage)."""
    with transaction.atomic():
        event = (
            UsageEvent.objects.select_for_update(of=("self",))
            .select_related("customer", "feature")
            .filter(pk=event_id, meter_status=UsageEvent.MeterStatus.PENDING)
            .first()
        )
        if event is None:
            return None
        if event.period_start is not None:
            # The period's counter, locked: its late events are priced one after another (a correction locks it
            # too).
            UsageCounter.objects.select_for_update().filter(
                customer_id=event.customer_id, feature_id=event.feature_id, period_start=event.period_start
            ).first()
        price = metered_price_of(customer=event.customer, feature_id=event.feature_id)
        if price is None:
            meter_status_move(
                event_ids=[event.pk],
                status=UsageEvent.MeterStatus.SKIPPED,
                meter_error="The customer has no live subscription item on a metered price of this meter.",
                meter_next_attempt_at=None,
            )
            return None
        units = event.quantity - event.covered
        if period_in_trial(customer=event.customer, period_end=period_end, price_id=price.pk):
            # Stripe bills no usage of a trial: nor does the next invoice.
            amount, currency = 0, price.currency
        else:
            amount, currency = invoice_adjustment(event, units, price)
        charge = LateUsageCharge.objects.create(
            project_id=event.project_id,
            customer_id=event.customer_id,
            feature_id=event.feature_id,
            usage_event_id=event.pk,
            event_id=event.event_id,
            period_end=period_end,
            quantity=units,
            amount=amount,
            currency=currency,
            status=LateUsageCharge.Status.PENDING if amount else LateUsageCharge.Status.NOTHING,
            next_attempt_at=timezone.now() if amount else None,
        )
        meter_status_move(
            event_ids=[event.pk],
            status=UsageEvent.MeterStatus.REPORTED,
            meter_reported_at=timezone.now(),
            meter_attempts=F("meter_attempts") + 1,
            meter_error=LATE_BILLED,
            meter_next_attempt_at=None,
        )
    return charge


def late_charge_bill(*, charge_id: int) -> bool:
    """Makes the charge's pending invoice item at Stripe (the customer's next invoice bills it); True when it is
    made (or was), False when Stripe failed (retried by the sweep after a backoff)."""
    charge = (
        LateUsageCharge.objects.select_related("customer", "feature")
        .filter(pk=charge_id, status=LateUsageCharge.Status.PENDING)
        .first()
    )
    if charge is None:
        return True
    item, error = next_invoice_item_create(
        gateway_for(Project.objects.get(pk=charge.project_id)),
        customer=charge.customer.stripe_customer_id,
        amount=charge.amount,
        currency=charge.currency,
        description=(
            f"{charge.feature.name}: {charge.quantity} units of the period to {charge.period_end:%Y-%m-%d}, "
            "reported after it was invoiced"
        ),
        metadata={"tollgate_event": charge.event_id, "tollgate_late_usage": str(charge.pk)},
        idem=f"late_usage:{charge.pk}:invoice_item",
    )
    if error:
        attempts = charge.attempts + 1
        LateUsageCharge.objects.filter(pk=charge.pk, status=LateUsageCharge.Status.PENDING).update(
            attempts=attempts,
            error=error,
            next_attempt_at=timezone.now()
            + timedelta(seconds=min(RETRY_SECONDS * 2 ** (attempts - 1), 6 * 3600)),
        )
        return False
    LateUsageCharge.objects.filter(pk=charge.pk, status=LateUsageCharge.Status.PENDING).update(
        status=LateUsageCharge.Status.CREATED,
        stripe_invoice_item=item,
        billed_at=timezone.now(),
        attempts=F("attempts") + 1,
        error="",
        next_attempt_at=None,
    )
    return True


def late_charges_due() -> list[int]:
    """Charges whose invoice item is still to make and whose backoff has passed: what the reporter's sweep queues
    (`billing.tasks.late_usage_to_stripe`)."""
    return list(
        LateUsageCharge.objects.filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()),
            status=LateUsageCharge.Status.PENDING,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
