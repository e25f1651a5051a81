"""The revenue figures kept as the events arrive (billing.models.revenue): what each payment, refund and
subscription should count, the journal of changes, its fold into the totals, and the repair of rows written
around these services.

A writer calls `payment_figures`, `refund_figures` or `subscription_figures` in the transaction that changes the
row, under its row lock: each compares what the row should count now with what it has counted, journals the
difference and sets the row's record of it, which the caller saves with its other fields. Calling it again
changes nothing, so a retried event or a sweep that applies a state twice counts it once.
"""

import logging
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import TruncDate

from billing.models import Figure, Payment, Refund, RevenueChange, Subscription
from catalog.models import Price
from catalog.pricing import price_amount

logger = logging.getLogger(__name__)

# Subscriptions that bring in recurring revenue (a trial does not yet; past_due still counts until it ends).
MRR_STATUSES = (Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)
# The MRR figure's unit: a millionth of a minor unit.
MRR_UNIT = 1_000_000
_MONTHS_PER_INTERVAL = {
    Price.Interval.DAY: Decimal(12) / Decimal(365),
    Price.Interval.WEEK: Decimal(12) / Decimal(52),
    Price.Interval.MONTH: Decimal(1),
    Price.Interval.YEAR: Decimal(12),
}
# What counts, as queries (payment_figures and refund_figures decide the same for one row): paid payments on the
# day they succeeded; refunds as Stripe counts them in a charge's amount_refunded (pending ones too, the money is
# on its way back; not failed or canceled ones, nor ours that Stripe never made) on the day they were made.
PAYMENT_COUNTED = Q(status__in=Payment.PAID_STATUSES, succeeded_at__isnull=False)
REFUND_COUNTED = Q(status__in=Refund.COUNTED_STATUSES) & ~Q(stripe_refund_id="")
# Journal rows folded per transaction.
FOLD_BATCH = 5000

Counted = tuple[int, date | None]


def monthly_amount(price: Price, quantity: int) -> Decimal:
    months = _MONTHS_PER_INTERVAL[Price.Interval(price.interval)] * price.interval_count
    return Decimal(price_amount(price, quantity)) / months


def subscription_monthly_amount(subscription: Subscription) -> Decimal:
    """What a subscription bills by the month, in its currency: every licensed item (the base plan and its
    add-ons; a metered item bills usage, not by the month). One mirrored before its items were: by its price.
    Prefetch `items__price` when summing many."""
    pairs = [(item.price, item.quantity or 0) for item in subscription.items.all()] or [
        (subscription.price, subscription.quantity)
    ]
    return sum(
        (
            monthly_amount(price, quantity)
            for price, quantity in pairs
            if price.usage_type != Price.UsageType.METERED
        ),
        Decimal(0),
    )


def mrr_minor_units(micros: int) -> int:
    """An MRR figure (millionths of a minor unit) in minor units, rounded half up."""
    return int((Decimal(micros) / MRR_UNIT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _journal(
    rows: list[RevenueChange], *, project_id: str, figure: str, currency: str, old: Counted, new: Counted
) -> None:
    """The changes that take `old` back and count `new` (none when they are the same)."""
    if old == new:
        return
    for amount, day in ((-old[0], old[1]), (new[0], new[1])):
        if amount and day is not None:
            rows.append(
                RevenueChange(project_id=project_id, figure=figure, currency=currency, day=day, amount=amount)
            )


def payment_figures(payment: Payment) -> list[str]:
    """Journals what changed in what `payment` counts as revenue (its amount on the day it succeeded, while it
    is paid) and sets the row's record of it; returns the fields the caller saves (none when nothing changed).
    Under the payment's row lock, in the caller's transaction."""
    succeeded = payment.succeeded_at
    new: Counted = (0, None)
    if payment.status in Payment.PAID_STATUSES and succeeded is not None:
        new = (payment.amount, _utc_day(succeeded))
    return _counted(payment, Figure.REVENUE, payment.currency, new)


def refund_figures(refund: Refund) -> list[str]:
    """`payment_figures` for a refund, counted as Stripe counts it in a charge's amount_refunded (pending ones
    too, not failed or canceled ones, nor ours that Stripe never made), on the day it was made."""
    counted = refund.status in Refund.COUNTED_STATUSES and bool(refund.stripe_refund_id)
    new: Counted = (refund.amount, _utc_day(refund.created_at)) if counted else (0, None)
    return _counted(refund, Figure.REFUNDS, refund.currency, new)


def _counted(row: Payment | Refund, figure: str, currency: str, new: Counted) -> list[str]:
    old: Counted = (row.revenue_counted, row.revenue_day)
    if old == new:
        return []
    changes: list[RevenueChange] = []
    _journal(changes, project_id=row.project_id, figure=figure, currency=currency, old=old, new=new)
    RevenueChange.objects.bulk_create(changes)
    row.revenue_counted, row.revenue_day = new
    return ["revenue_counted", "revenue_day"]


def subscription_figures(subscription: Subscription) -> list[str]:
    """`payment_figures` for a subscription's MRR: what it bills by the month while it is live (`MRR_STATUSES`),
    counted on the day of the change, and the count of live subscriptions. Reads its items (prefetched with
    their prices by the mirror)."""
    live = subscription.status in MRR_STATUSES
    currency = subscription.price.currency if live else ""
    micros = 0
    if live:
        exact = subscription_monthly_amount(subscription) * MRR_UNIT
        micros = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if (subscription.mrr_counted, subscription.mrr_currency) == (micros, currency):
        return []
    day = _utc_day(datetime.now(UTC))
    changes: list[RevenueChange] = []
    if subscription.mrr_counted:
        _journal(
            changes,
            project_id=subscription.project_id,
            figure=Figure.MRR,
            currency=subscription.mrr_currency,
            old=(subscription.mrr_counted, day),
            new=(0, None),
        )
    if micros:
        _journal(
            changes,
            project_id=subscription.project_id,
            figure=Figure.MRR,
            currency=currency,
            old=(0, None),
            new=(micros, day),
        )
    if bool(subscription.mrr_currency) != live:  # it starts or stops being live
        changes.append(
            RevenueChange(
                project_id=subscription.project_id,
                figure=Figure.ACTIVE,
                currency="",
                day=day,
                amount=1 if live else -1,
            )
        )
    RevenueChange.objects.bulk_create(changes)
    subscription.mrr_counted, subscription.mrr_currency = micros, currency
    return ["mrr_counted", "mrr_currency"]


def revenue_fold(*, limit: int = FOLD_BATCH) -> int:
    """Moves up to `limit` journal rows into the totals in one transaction; returns how many it moved. The
    journal rows are taken with SKIP LOCKED and the totals written in one order, so folds running at once take
    different rows and never deadlock; a writer only ever inserts into the journal, so it never waits."""
    with transaction.atomic():
        taken = list(
            RevenueChange.objects.select_for_update(skip_locked=True)
            .order_by("id")
            .values_list("id", "project_id", "figure", "day", "currency", "amount")[:limit]
        )
        if not taken:
            return 0
        sums: dict[tuple[str, str, date, str], int] = defaultdict(int)
        for _, *key, amount in taken:
            sums[tuple(key)] += amount  # type: ignore[index]
        rows = [(*key, amount) for key, amount in sorted(sums.items()) if amount]
        if rows:
            with connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO billing_revenuetotal (project_id, figure, day, currency, amount) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (project_id, figure, day, currency) "
                    "DO UPDATE SET amount = billing_revenuetotal.amount + EXCLUDED.amount",
                    rows,
                )
        RevenueChange.objects.filter(id__in=[row[0] for row in taken]).delete()
        return len(taken)


def revenue_figures_repair(*, project_id: str | None = None) -> int:
    """Brings every row written around the services above (a direct write, an import, rows older than the
    figures) to what it should count, each under its row lock; returns how many rows it changed. Payments and
    refunds are found by one query each; subscriptions are read in full (what they bill depends on their items
    and prices)."""
    scope = Q(project_id=project_id) if project_id else Q()
    payments = Payment.objects.filter(scope).filter(_miscounted(PAYMENT_COUNTED, "succeeded_at"))
    refunds = Refund.objects.filter(scope).filter(_miscounted(REFUND_COUNTED, "created_at"))
    changed = 0
    for pk in list(payments.values_list("pk", flat=True)):
        with transaction.atomic():
            payment = Payment.objects.select_for_update().get(pk=pk)
            changed += _saved(payment, payment_figures(payment))
    for pk in list(refunds.values_list("pk", flat=True)):
        with transaction.atomic():
            refund = Refund.objects.select_for_update().get(pk=pk)
            changed += _saved(refund, refund_figures(refund))
    for pk in list(Subscription.objects.filter(scope).values_list("pk", flat=True)):
        with transaction.atomic():
            subscription = (
                Subscription.objects.select_for_update(of=("self",))
                .select_related("price")
                .prefetch_related("items__price")
                .get(pk=pk)
            )
            changed += _saved(subscription, subscription_figures(subscription))
    return changed


def _miscounted(counted: Q, when: str) -> Q:
    """Rows that should count their amount on the UTC day of `when` (those matching `counted`) and record
    otherwise, and rows that record a count they should not have."""
    counted_right = (
        Q(revenue_counted=F("amount"))
        & Q(revenue_day__isnull=False)
        & Q(revenue_day=TruncDate(when, tzinfo=UTC))
    )
    return (counted & ~counted_right) | (~counted & (~Q(revenue_counted=0) | Q(revenue_day__isnull=False)))


def _saved(row: Payment | Refund | Subscription, fields: list[str]) -> int:
    if not fields:
        return 0
    row.save(update_fields=fields)
    logger.warning(
        "Revenue figures: %s %s counted again (it was written around the billing services).",
        row._meta.model_name,
        row.pk,
    )
    return 1
