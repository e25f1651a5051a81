"""The revenue schedules (`billing.models.RevenueSchedule`) written from the mirror.

`recognition_sync(project)` recomputes the schedules of every document the mirror changed since the project's
cursor: a paid subscription invoice (one schedule per line over its service period), a paid one-off payment (one
per item: at fulfilment, or over the access period its purchase grants), the reversals of their refunds and credit
notes, and the stop of a subscription that ended early. What a document's schedules should be is a function of the
mirror alone; it is stored by difference (new keys inserted, changed ones updated, vanished ones deleted), so a
replayed or late event, or a sync run twice, writes nothing more.

A line's money is its amount with its share of what the document's revenue differs by from its lines (discounts,
tax inside the amounts) spread over the positive lines by their amounts: the schedules of a document add up to its
revenue, tax aside, to the minor unit. A reversal gives back revenue in the same proportion to tax (a refund of
half a payment takes back half its revenue); it takes back what is still deferred of each line first, then what
was already recognised (`immediate`, on the reversal's day).

Documents are found by `updated_at` since the cursor less a margin (`SYNC_MARGIN`): a transaction that commits
after the sync began is read by the next one.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import (
    SCHEDULE_TIMING,
    CreditNote,
    Invoice,
    Payment,
    RecognitionCursor,
    Refund,
    RevenueSchedule,
    Subscription,
    recognised_by,
)
from billing.services.recognition_credits import CreditUsage, credit_usage
from catalog.models import Price
from entitlements.models import Purchase
from projects.models import Project

# How far before the cursor a sync looks again: longer than any transaction of the mirror.
SYNC_MARGIN = timedelta(minutes=10)
# Documents recomputed per transaction.
BATCH = 500
Kind = RevenueSchedule.Kind


@dataclass
class _Schedule:
    """A schedule as the mirror says it should be (the columns `RevenueSchedule` stores)."""

    key: str
    kind: str
    document: str
    product_id: str | None
    description: str
    currency: str
    amount: int
    start_day: date
    end_day: date
    booked_on: date
    immediate: int = 0
    stopped_on: date | None = None
    reverses_key: str = ""
    credit_purchase: str = ""
    usage: CreditUsage | None = field(
        default=None, compare=False
    )  # a credits line's: how its credits are used

    def recognised_by(self, day: date) -> int:
        if self.credit_purchase:
            return credits_recognised_by(self.amount, self.immediate, self.booked_on, self.usage, day)
        return recognised_by(day=day, **{name: getattr(self, name) for name in SCHEDULE_TIMING})


_STORED = (
    "kind",
    "document",
    "product_id",
    "description",
    "currency",
    "amount",
    "immediate",
    "start_day",
    "end_day",
    "booked_on",
    "stopped_on",
    "credit_purchase",
)


def credits_recognised_by(
    amount: int, immediate: int, booked_on: date, usage: CreditUsage | None, day: date, *, given_back: int = 0
) -> int:
    """What a prepaid credits' line has recognised by the end of `day`: its money in proportion to the credits used
    (spent, forfeited, expired), no more than what its reversals left of it (`given_back` by then, from the
    liability); a reversal of one (no usage) its `immediate` part, on its day."""
    if day < booked_on:
        return 0
    if usage is None:
        return immediate
    if usage.units <= 0:
        return amount - given_back
    return min(amount * min(usage.used_by(day), usage.units) // usage.units, amount - given_back)


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _stamp_day(seconds: int | None) -> date | None:
    """A Stripe timestamp's UTC day (None for none)."""
    return datetime.fromtimestamp(int(seconds), tz=UTC).date() if seconds else None


def spread(total: int, weights: list[int]) -> list[int]:
    """`total` split in proportion to `weights` (non-negative), to the minor unit: the largest remainders get the
    units rounding leaves over, so the parts add up to `total` exactly."""
    whole = sum(weights)
    if whole <= 0:
        return [0] * len(weights)
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    parts = [magnitude * w // whole for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(magnitude * weights[i] % whole), i))
    for i in remainders[: magnitude - sum(parts)]:
        parts[i] += 1
    return [sign * p for p in parts]


def _fit(amounts: list[int], revenue: int) -> list[int]:
    """Lines' amounts moved so that they add up to `revenue`: the difference spread over the positive ones."""
    weights = [max(a, 0) for a in amounts]
    if not any(weights):
        weights = [1] * len(amounts)
    return [a + share for a, share in zip(amounts, spread(revenue - sum(amounts), weights), strict=True)]


def _share(amount: int, numerator: int, denominator: int) -> int:
    """`amount` × numerator / denominator, rounded half up (the revenue part of a tax-inclusive amount)."""
    if denominator <= 0:
        return 0
    return (2 * amount * numerator + denominator) // (2 * denominator)


class _Products:
    """Stripe price id → Tollgate product, read once per sync."""

    def __init__(self, project: Project) -> None:
        self.by_price = dict(
            Price.objects.filter(project=project)
            .exclude(stripe_price_id="")
            .values_list("stripe_price_id", "product_id")
        )


def _line_key(invoice: Invoice, index: int) -> str:
    return f"{invoice.stripe_invoice_id}:{invoice.lines[index].get('stripe_line_id') or index}"


def _invoice_schedules(invoice: Invoice, products: _Products, paid_day: date) -> list[_Schedule]:
    lines = [(index, line) for index, line in enumerate(invoice.lines) if int(line.get("amount") or 0)]
    if not lines:
        return []
    amounts = _fit([int(line["amount"]) for _, line in lines], invoice.total - invoice.tax)
    schedules = []
    for (index, line), amount in zip(lines, amounts, strict=True):
        start = _stamp_day(line.get("period_start")) or paid_day
        end = _stamp_day(line.get("period_end")) or start
        schedules.append(
            _Schedule(
                key=_line_key(invoice, index),
                kind=Kind.SUBSCRIPTION,
                document=invoice.stripe_invoice_id,
                product_id=products.by_price.get(line.get("stripe_price_id") or ""),
                description=str(line.get("description") or "")[:500],
                currency=invoice.currency,
                amount=amount,
                start_day=start,
                end_day=max(end, start),
                booked_on=paid_day,
            )
        )
    return schedules


def _payment_schedules(
    payment: Payment, purchases: dict[int, Purchase], usage: dict[str, CreditUsage], paid_day: date
) -> list[_Schedule]:
    items = [item for item in payment.items if int(item.get("amount") or 0)] or [
        {"amount": payment.amount, "description": payment.description, "product": None}
    ]
    indexes = [i for i, item in enumerate(payment.items) if int(item.get("amount") or 0)] or [0]
    amounts = _fit([int(item["amount"]) for item in items], payment.amount - payment.amount_tax)
    schedules = []
    for index, item, amount in zip(indexes, items, amounts, strict=True):
        purchase = purchases.get(index)
        credits = usage.get(purchase.pk) if purchase else None
        start = _day(purchase.starts_at) if purchase and not credits else paid_day
        end = _day(purchase.ends_at) if purchase and purchase.ends_at and not credits else start
        schedules.append(
            _Schedule(
                key=f"{payment.pk}:{index}",
                kind=Kind.CREDITS if credits else Kind.ONE_OFF,
                credit_purchase=purchase.pk if purchase and credits else "",
                usage=credits,
                document=str(payment.pk),
                product_id=item.get("product"),
                description=str(item.get("description") or payment.description or "")[:500],
                currency=payment.currency,
                amount=amount,
                start_day=start,
                end_day=max(end, start),
                booked_on=paid_day,
            )
        )
    return schedules


@dataclass(frozen=True)
class _Reversal:
    source: str  # the refund's or credit note's Stripe id
    day: date
    revenue: int  # what it gives back, tax aside (positive)
    weights: dict[str, int] | None = None  # by line key, where it names the lines it credits


def _reverse(schedules: list[_Schedule], reversals: Iterable[_Reversal]) -> list[_Schedule]:
    """The reversals' schedules, in the order they were made: each spread over the lines by what they still hold
    (or by the lines it names), taking back what is deferred first."""
    held = {s.key: s.amount for s in schedules}
    given: dict[str, list[_Schedule]] = defaultdict(list)
    made = []
    for reversal in sorted(reversals, key=lambda r: (r.day, r.source)):
        targets = [s for s in schedules if held[s.key] > 0]
        if not targets:
            continue
        weights = [
            (reversal.weights or {}).get(s.key, 0) if reversal.weights else held[s.key] for s in targets
        ]
        if not any(weights):
            weights = [held[s.key] for s in targets]
        wanted = min(reversal.revenue, sum(held[s.key] for s in targets))
        for target, part in zip(targets, spread(wanted, weights), strict=True):
            part = min(part, held[target.key])
            if part <= 0:
                continue
            before = reversal.day - timedelta(days=1)
            recognised = target.recognised_by(before) + sum(
                r.recognised_by(before) for r in given[target.key]
            )
            deferred = max(min(held[target.key] - recognised, part), 0)
            start = (
                reversal.day
                if target.credit_purchase
                else min(max(reversal.day, target.start_day), target.end_day)
            )
            row = _Schedule(
                key=f"{reversal.source}:{target.key}",
                kind=Kind.REVERSAL,
                document=reversal.source,
                product_id=target.product_id,
                description=target.description,
                currency=target.currency,
                amount=-part,
                immediate=-(part - deferred),
                start_day=start,
                end_day=start if target.credit_purchase else target.end_day,
                booked_on=reversal.day,
                reverses_key=target.key,
                credit_purchase=target.credit_purchase,
            )
            given[target.key].append(row)
            held[target.key] -= part
            made.append(row)
    return made


def _invoice_reversals(invoice: Invoice, refunds: list[Refund], notes: list[CreditNote]) -> list[_Reversal]:
    revenue, total = invoice.total - invoice.tax, invoice.total
    reversals = [
        _Reversal(
            refund.stripe_refund_id,
            _day(refund.created_at),
            _share(refund.amount, revenue, total),
        )
        for refund in refunds
    ]
    for note in notes:
        credited = note.pre_payment_amount + note.credit_amount + note.out_of_band_amount
        weights: dict[str, int] = defaultdict(int)
        for line in note.lines:
            index = line.get("invoice_line")
            if isinstance(index, int) and 0 <= index < len(invoice.lines):
                weights[_line_key(invoice, index)] += max(int(line.get("amount") or 0), 0)
        reversals.append(
            _Reversal(
                note.stripe_credit_note_id,
                _day(note.created_at),
                _share(credited, revenue, total),
                dict(weights) or None,
            )
        )
    return reversals


def _stopped(schedules: list[_Schedule], ended: datetime | None) -> None:
    """A subscription that ended before a line's period ends: the rest of the line is earned on that day."""
    if ended is None:
        return
    stop = _day(ended)
    for schedule in schedules:
        if stop < schedule.end_day:
            schedule.stopped_on = stop


def _invoice_document(
    invoice: Invoice, products: _Products, refunds: list[Refund], notes: list[CreditNote]
) -> list[_Schedule]:
    if invoice.status != "paid" or invoice.total <= 0:
        return []
    paid_day = _day(invoice.paid_at or invoice.updated_at)
    schedules = _invoice_schedules(invoice, products, paid_day)
    reversals = _reverse(schedules, _invoice_reversals(invoice, refunds, notes))
    if invoice.subscription is not None:
        _stopped([*schedules, *reversals], invoice.subscription.ended_at)
    return [*schedules, *reversals]


def _payment_document(
    payment: Payment, purchases: dict[int, Purchase], usage: dict[str, CreditUsage], refunds: list[Refund]
) -> list[_Schedule]:
    if payment.status not in Payment.PAID_STATUSES or payment.amount <= 0 or payment.succeeded_at is None:
        return []
    schedules = _payment_schedules(payment, purchases, usage, _day(payment.succeeded_at))
    reversals = [
        _Reversal(
            refund.stripe_refund_id,
            _day(refund.created_at),
            _share(refund.amount, payment.amount - payment.amount_tax, payment.amount),
        )
        for refund in refunds
    ]
    return [*schedules, *_reverse(schedules, reversals)]


_ONE_OFF = Q(stripe_invoice_id="") & ~Q(type=Payment.Type.SUBSCRIPTION)


def _changed(project: Project, since: datetime | None) -> tuple[set[str], set[str]]:
    """The invoices and one-off payments (their ids) whose schedules may have changed since `since` (all without)."""

    def recent(model: Any, field: str = "updated_at") -> Any:
        rows = model.objects.filter(project=project)
        return rows if since is None else rows.filter(**{f"{field}__gte": since})

    invoices = set(recent(Invoice).values_list("pk", flat=True))
    invoices |= set(recent(CreditNote).values_list("invoice_id", flat=True))
    refunded = recent(Refund).values_list("payment__stripe_invoice_id", "payment_id")
    invoice_ids = {stripe_invoice for stripe_invoice, _ in refunded if stripe_invoice}
    payments = {payment for stripe_invoice, payment in refunded if not stripe_invoice}
    ended = recent(Subscription).filter(ended_at__isnull=False).values_list("pk", flat=True)
    invoices |= set(
        Invoice.objects.filter(
            Q(stripe_invoice_id__in=invoice_ids) | Q(subscription_id__in=list(ended)), project=project
        ).values_list("pk", flat=True)
    )
    payments |= set(recent(Payment).filter(_ONE_OFF).values_list("pk", flat=True))
    payments |= set(recent(Purchase, "created_at").values_list("payment_id", flat=True))
    return invoices, payments


# What an invoice's schedules are made of.
_INVOICE_COLUMNS = (
    "project_id",
    "stripe_invoice_id",
    "status",
    "currency",
    "total",
    "tax",
    "paid_at",
    "updated_at",
    "lines",
    "subscription_id",
)
_COUNTED_REFUNDS = Q(status__in=Refund.COUNTED_STATUSES) & ~Q(stripe_refund_id="")


def _invoices_desired(project: Project, batch: list[Invoice], products: _Products) -> list[_Schedule]:
    """The schedules of a batch of invoices, their refunds and credit notes read in one query each."""
    refunds: dict[str, list[Refund]] = defaultdict(list)
    paid = [i.stripe_invoice_id for i in batch if i.status == "paid"]
    for refund in Refund.objects.filter(
        _COUNTED_REFUNDS, project=project, payment__stripe_invoice_id__in=paid
    ).select_related("payment"):
        refunds[refund.payment.stripe_invoice_id].append(refund)
    notes: dict[str, list[CreditNote]] = defaultdict(list)
    for note in CreditNote.objects.filter(
        invoice_id__in=[i.pk for i in batch if i.status == "paid"], status=CreditNote.Status.ISSUED
    ):
        notes[note.invoice_id].append(note)
    return [
        schedule
        for invoice in batch
        for schedule in _invoice_document(
            invoice, products, refunds[invoice.stripe_invoice_id], notes[invoice.pk]
        )
    ]


def _payments_desired(project: Project, batch: list[Payment]) -> list[_Schedule]:
    """The schedules of a batch of one-off payments, their purchases, credits' use and refunds read at once."""
    purchases: dict[str, dict[int, Purchase]] = defaultdict(dict)
    for purchase in Purchase.objects.filter(project=project, payment_id__in=[str(p.pk) for p in batch]):
        purchases[purchase.payment_id][purchase.line] = purchase
    usage = credit_usage(p.pk for lines in purchases.values() for p in lines.values())
    refunds: dict[str, list[Refund]] = defaultdict(list)
    for refund in Refund.objects.filter(
        _COUNTED_REFUNDS, project=project, payment_id__in=[p.pk for p in batch]
    ):
        refunds[str(refund.payment_id)].append(refund)
    return [
        schedule
        for payment in batch
        for schedule in _payment_document(
            payment, purchases[str(payment.pk)], usage, refunds[str(payment.pk)]
        )
    ]


def _store(
    project: Project, documents: list[str], desired: list[_Schedule], known: set[str] | None = None
) -> int:
    """Writes the schedules of `documents` as `desired` says, by difference (the lines in one insert, then their
    reversals in another; changed rows in one update). Returns the rows written. `known`, when given, holds every
    document that had schedules before the sync: a batch of none of them reads nothing (a first sync writes the
    table while its statistics still count none of the rows, and each batch's lookup would scan it whole)."""
    if known is not None and known.isdisjoint(documents):
        lines = []
    else:
        lines = list(RevenueSchedule.objects.filter(project=project, document__in=documents))
    reversed_rows = RevenueSchedule.objects.filter(project=project, reverses_id__in=[row.pk for row in lines])
    existing = {row.key: row for row in [*lines, *reversed_rows]}
    wanted = {s.key: s for s in desired}
    now = timezone.now()
    gone = [row.pk for key, row in existing.items() if key not in wanted]
    RevenueSchedule.objects.filter(pk__in=gone).delete()
    written = len(gone)
    ids = {key: row.pk for key, row in existing.items() if key in wanted}
    changed: list[RevenueSchedule] = []
    for reversals in (False, True):  # the lines first: their reversals point at them
        new = []
        for schedule in desired:
            if bool(schedule.reverses_key) != reversals:
                continue
            values = {name: getattr(schedule, name) for name in _STORED}
            values["reverses_id"] = ids.get(schedule.reverses_key) if schedule.reverses_key else None
            row = existing.get(schedule.key)
            if row is None:
                new.append(RevenueSchedule(project=project, key=schedule.key, **values))
            elif any(getattr(row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(row, name, value)
                row.updated_at = (
                    now  # a bulk update leaves auto_now alone; the journal's recognition reads it
                )
                changed.append(row)
        RevenueSchedule.objects.bulk_create(new)
        if new and new[0].pk is None:  # a database that does not return the ids of a bulk insert
            made = RevenueSchedule.objects.filter(project=project, key__in=[row.key for row in new])
            ids.update(made.values_list("key", "pk"))
        else:
            ids.update((row.key, row.pk) for row in new)
        written += len(new)
    RevenueSchedule.objects.bulk_update(changed, [*_STORED, "reverses_id", "updated_at"])
    return written + len(changed)


def recognition_sync(project: Project, *, full: bool = False) -> int:
    """Brings the project's schedules up to the mirror, in one transaction that holds the project's cursor (one
    sync of a project at once): what changed since the last sync, or every document (`full`: beat's nightly run,
    for rows a write around the services changed without their `updated_at`). Returns the rows written (0: they
    already were)."""
    with transaction.atomic():
        RecognitionCursor.objects.get_or_create(
            project=project, defaults={"synced_to": datetime.min.replace(tzinfo=UTC)}
        )
        cursor = RecognitionCursor.objects.select_for_update().get(project=project)
        started = timezone.now()
        since = None if full or cursor.synced_to.year == 1 else cursor.synced_to - SYNC_MARGIN
        invoices, payments = _changed(project, since)
        products = _Products(project)
        known = (
            set(RevenueSchedule.objects.filter(project=project).values_list("document", flat=True).distinct())
            if since is None
            else None
        )
        written = 0
        invoice_ids = sorted(invoices)
        for offset in range(0, len(invoice_ids), BATCH):
            batch = list(
                Invoice.objects.filter(pk__in=invoice_ids[offset : offset + BATCH])
                .select_related("subscription")
                .only(*_INVOICE_COLUMNS, "subscription__ended_at")
            )
            desired = _invoices_desired(project, batch, products)
            written += _store(project, [i.stripe_invoice_id for i in batch], desired, known)
        payment_ids = sorted(payments)
        for offset in range(0, len(payment_ids), BATCH):
            batch_payments = list(
                Payment.objects.filter(_ONE_OFF, pk__in=payment_ids[offset : offset + BATCH])
            )
            desired = _payments_desired(project, batch_payments)
            written += _store(project, [str(p.pk) for p in batch_payments], desired, known)
        cursor.synced_to = started
        cursor.save(update_fields=["synced_to"])
    return written
