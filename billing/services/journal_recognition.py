"""The revenue the journal recognises: each month, what the revenue schedules earned moves out of deferred revenue.

What is billed waits in deferred revenue (2100) when it is issued or paid (`billing.services.journal`). Once a month
has ended, each document with schedules (a paid invoice, a one-off payment, a refund or a credit note) posts one
`recognition` entry, dated the month's last moment, that brings what it holds to what its schedules say by the
month's end (the figures of `billing.services.revenue_report`, to the minor unit):

- a line: what it has recognised, from deferred revenue to revenue (4000);
- a line of prepaid credits: all of it from deferred revenue to prepaid credits (2500), a liability until the credits
  are spent or expire; what they have recognised, from there to revenue;
- a reversal (a refund's or a credit note's, whose money went to 4900 Refunds and credit notes): what it took back of
  revenue not yet recognised, out of 4900 and out of the deferred revenue or prepaid credits it gave back; what
  it took back of revenue already recognised stays in 4900.

So, at a month's end, deferred revenue less what is billed and not yet paid is the report's deferred closing, and
prepaid credits are the report's credits closing. A month is posted once (`RecognitionCursor.journal_month`), the
first time beat's sync or `manage.py month_close` runs after it ended; what a document's schedules change later by
(an event mirrored after the month was posted) is posted when it is learnt, dated then, as every other movement.
"""

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Min, Sum
from django.utils import timezone

from billing.models import Account, EntryKind, JournalEntry, JournalLine, RecognitionCursor, RevenueSchedule
from billing.services.journal import Postings, difference
from billing.services.recognition import SYNC_MARGIN
from billing.services.revenue_report import SCHEDULE_COLUMNS, month_start, next_month, recognitions
from projects.models import Project


def schedule_postings(row: dict[str, Any], recognised: int) -> Postings:
    """What a schedule holds in each account once it has recognised `recognised` (its movement from the account
    the money waited in)."""
    amount = row["amount"]
    waiting = Account.PREPAID_CREDITS if row["credit_purchase"] else Account.DEFERRED_REVENUE
    if row["reverses_id"]:
        return {waiting: recognised - amount, Account.REFUNDS: amount - recognised}
    if row["credit_purchase"]:
        return {
            Account.DEFERRED_REVENUE: amount,
            Account.PREPAID_CREDITS: recognised - amount,
            Account.REVENUE: -recognised,
        }
    return {Account.DEFERRED_REVENUE: recognised, Account.REVENUE: -recognised}


def _month_end(first: date) -> datetime:
    """The last moment of the month that begins on `first`, UTC."""
    return datetime.combine(next_month(first), time.min, tzinfo=UTC) - timedelta(microseconds=1)


def _targets(
    project: Project, month: date, *, still: bool, changed_since: datetime | None, full: bool
) -> dict[str, tuple[str, Postings]]:
    """The currency of each document whose recognition may differ, and what it should hold at the end of `month`:
    every document (`full`), or those still recognising in the month (`still`: their lines not yet over, or
    prepaid credits) or whose schedules changed since `changed_since`.

    A month's pass reads every schedule booked by the month's end in one scan and chooses the documents here: a
    join of the schedules with themselves is planned as a nested loop while the table's statistics still count
    none of the rows a first sync just wrote. What changed since the last pass is looked up by its documents."""
    closing = next_month(month)
    schedules = RevenueSchedule.objects.filter(project=project, booked_on__lt=closing)
    if not (full or still):
        changed = set(
            RevenueSchedule.objects.filter(project=project, updated_at__gte=changed_since).values_list(
                "document", flat=True
            )
        )
        schedules = schedules.filter(document__in=sorted(changed))
    rows = list(schedules.values("document", "updated_at", *SCHEDULE_COLUMNS))
    if still and not full:
        chosen = {
            row["document"]
            for row in rows
            if row["end_day"] > month
            or row["booked_on"] >= month
            or (row["stopped_on"] is not None and row["stopped_on"] >= month)
            or row["credit_purchase"]
            or (changed_since is not None and row["updated_at"] >= changed_since)
        }
        rows = [row for row in rows if row["document"] in chosen]
    last_day = closing - timedelta(days=1)
    targets: dict[str, tuple[str, dict[str, int]]] = {}
    for row, by in zip(rows, recognitions(rows), strict=True):
        _, target = targets.setdefault(row["document"], (row["currency"], defaultdict(int)))
        for account, amount in schedule_postings(row, by(last_day)).items():
            target[account] += amount
    return {
        document: (currency, {account: amount for account, amount in target.items() if amount})
        for document, (currency, target) in targets.items()
    }


def _post(
    project: Project,
    targets: dict[str, tuple[str, Postings]],
    effective_at: datetime,
    *,
    scan: bool,
    full: bool,
) -> int:
    """Posts what each document's recognition entries differ by from its target, one entry each; returns how
    many. `scan`: what every document holds is read in one scan (a month's pass) rather than by their ids;
    `full`: a document with entries and no schedules left goes back to nothing."""
    entries = JournalEntry.objects.filter(project=project, kind=EntryKind.RECOGNITION)
    if not (scan or full):
        entries = entries.filter(source__in=sorted(targets))
    held: dict[str, dict[str, int]] = defaultdict(dict)
    revisions: dict[str, int] = {}
    currencies: dict[str, str] = {}
    for source, currency, count in entries.values_list("source", "currency").annotate(count=Count("pk")):
        revisions[source], currencies[source] = count, currency
    for source, account, total in (
        JournalLine.objects.filter(entry__in=entries)
        .values_list("entry__source", "account")
        .annotate(total=Sum("amount"))
    ):
        if total:
            held[source][account] = total
    sources = sorted({*targets, *held}) if full else sorted(targets)
    new_entries, new_lines = [], []
    for source in sources:
        currency, target = targets.get(source, (currencies.get(source, ""), {}))
        moved = difference(target, held.get(source, {}))
        if not moved:
            continue
        entry = JournalEntry(
            project=project,
            kind=EntryKind.RECOGNITION,
            source=source,
            revision=revisions.get(source, 0) + 1,
            currency=currency,
            effective_at=effective_at,
        )
        new_entries.append(entry)
        new_lines += [JournalLine(entry=entry, account=a, amount=v) for a, v in sorted(moved.items())]
    JournalEntry.objects.bulk_create(new_entries, batch_size=1000)  # as `journal.post`: no save() guards
    JournalLine.objects.bulk_create(new_lines, batch_size=2000)
    return len(new_entries)


def journal_recognition(project: Project, *, full: bool = False) -> int:
    """Posts the revenue the project's schedules recognised in each month ended since the last one posted, at the
    month's end; then what the schedules changed by since the last posting, now (`full`: every document's,
    beat's nightly repair). One at a time per project (the recognition cursor's lock). Returns the entries
    posted."""
    with transaction.atomic():
        RecognitionCursor.objects.get_or_create(
            project=project, defaults={"synced_to": datetime.min.replace(tzinfo=UTC)}
        )
        cursor = RecognitionCursor.objects.select_for_update().get(project=project)
        now = timezone.now()
        first_open = month_start(now.astimezone(UTC).date())
        changed_since = cursor.journal_posted_at - SYNC_MARGIN if cursor.journal_posted_at else None
        posted = 0
        if cursor.journal_month is not None:
            month = next_month(cursor.journal_month)
        else:
            earliest = RevenueSchedule.objects.filter(project=project).aggregate(day=Min("booked_on"))["day"]
            month = month_start(earliest) if earliest is not None else first_open
        while month < first_open:  # each month ended since the last posted, at its end
            targets = _targets(project, month, still=True, changed_since=changed_since, full=full)
            posted += _post(project, targets, _month_end(month), scan=True, full=full)
            cursor.journal_month, changed_since, full = month, None, False
            month = next_month(month)
        if cursor.journal_month is not None and (changed_since is not None or full):
            targets = _targets(
                project, cursor.journal_month, still=False, changed_since=changed_since, full=full
            )
            posted += _post(project, targets, now, scan=False, full=full)
        cursor.journal_posted_at = now
        cursor.save(update_fields=["journal_month", "journal_posted_at"])
    return posted
