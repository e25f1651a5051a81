"""Posting the double-entry journal (billing.models.journal).

Each movement is a Stripe object and a kind: an invoice issued (`invoice`) and written off (`uncollectible`), a
payment's money in (`payment`) and held back by a dispute (`dispute`), a refund, a credit note, a Stripe fee. For
each, `*_postings` says what the movement should hold in each account now, from the mirror's row alone; `post`
writes the difference from what the movement's entries already hold as one balanced entry, or nothing. The writers
call it in the transaction that changes the row, under its row lock, so a duplicated event posts nothing and the
entries of one movement are written one at a time; `journal_repair` posts what rows written around them (an
upgrade, a restore) still differ by.

The accounts (debits positive):
- an invoice issued: receivables and the customer balance it took, against deferred revenue (without tax) and tax
  collected; void: all of it reversed; uncollectible: what is left owed moves from receivables to bad debt;
- a payment: cash at Stripe against receivables (an invoice's) or deferred revenue and tax (a one-off purchase);
- a refund: refunds against cash; a failed one reversed;
- a dispute: disputes against cash while Stripe holds the money back (open or lost); a won one reversed;
- a credit note: refunds against receivables (what it took off the amount due), the customer balance (what it
  credited there) and refunds owed outside Stripe; what it refunded to the card is the refund's own entry;
- a fee (from Stripe's balance transaction): Stripe fees against cash.

What is billed waits in deferred revenue until it is earned: the revenue recognised each month is posted by
`billing.services.journal_recognition`, from the revenue schedules.
"""

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from billing.models import (
    ACCOUNT_CODES,
    DISPUTE_HELD_BACK,
    Account,
    BalanceTransaction,
    CreditNote,
    EntryKind,
    Invoice,
    JournalEntry,
    JournalLine,
    Payment,
    Refund,
)
from core.money import minor_unit_exponent

Postings = dict[str, int]  # account → what the movement holds there (debit +, credit −)

# An invoice's issued statuses (a draft bills nothing yet; a void one nothing at all).
_ISSUED = ("open", "paid", "uncollectible")


def _balanced(postings: dict[str, int]) -> Postings:
    kept = {account: amount for account, amount in postings.items() if amount}
    if sum(kept.values()) != 0:
        raise ValueError(f"unbalanced postings: {kept}")
    return kept


def invoice_postings(invoice: Invoice) -> Postings:
    if invoice.status not in _ISSUED:
        return {}
    return _balanced(
        {
            Account.RECEIVABLES: invoice.total - invoice.balance_applied,
            Account.CUSTOMER_BALANCE: invoice.balance_applied,
            Account.DEFERRED_REVENUE: -(invoice.total - invoice.tax),
            Account.TAX_PAYABLE: -invoice.tax,
        }
    )


def uncollectible_postings(invoice: Invoice) -> Postings:
    if invoice.status != "uncollectible":
        return {}
    return _balanced(
        {Account.BAD_DEBT: invoice.amount_remaining, Account.RECEIVABLES: -invoice.amount_remaining}
    )


def payment_postings(payment: Payment) -> Postings:
    if payment.status not in Payment.PAID_STATUSES or payment.amount <= 0:
        return {}
    if payment.stripe_invoice_id:
        return _balanced({Account.STRIPE_BALANCE: payment.amount, Account.RECEIVABLES: -payment.amount})
    return _balanced(
        {
            Account.STRIPE_BALANCE: payment.amount,
            Account.DEFERRED_REVENUE: -(payment.amount - payment.amount_tax),
            Account.TAX_PAYABLE: -payment.amount_tax,
        }
    )


def dispute_postings(payment: Payment) -> Postings:
    if payment.dispute_status not in DISPUTE_HELD_BACK:
        return {}
    return _balanced(
        {Account.DISPUTES: payment.dispute_amount, Account.STRIPE_BALANCE: -payment.dispute_amount}
    )


def refund_postings(refund: Refund) -> Postings:
    if refund.status not in Refund.COUNTED_STATUSES or not refund.stripe_refund_id:
        return {}
    return _balanced({Account.REFUNDS: refund.amount, Account.STRIPE_BALANCE: -refund.amount})


def credit_note_postings(note: CreditNote) -> Postings:
    if note.status != CreditNote.Status.ISSUED:
        return {}
    credited = note.pre_payment_amount + note.credit_amount + note.out_of_band_amount
    return _balanced(
        {
            Account.REFUNDS: credited,
            Account.RECEIVABLES: -note.pre_payment_amount,
            Account.CUSTOMER_BALANCE: -note.credit_amount,
            Account.REFUNDS_OUTSIDE_STRIPE: -note.out_of_band_amount,
        }
    )


def fee_postings(txn: BalanceTransaction) -> Postings:
    return _balanced({Account.STRIPE_FEES: txn.fee, Account.STRIPE_BALANCE: -txn.fee})


def difference(postings: Postings, held: dict[str, int]) -> Postings:
    """What a movement's entries must post more to hold `postings` when they hold `held` (balanced, no zeros)."""
    return _balanced(
        {account: postings.get(account, 0) - (held.get(account) or 0) for account in {*postings, *held}}
    )


def post(
    *,
    project_id: str,
    kind: str,
    source: str,
    currency: str,
    postings: Postings,
    effective_at: datetime | None = None,
) -> JournalEntry | None:
    """Posts what `postings` differ by from what the movement's entries hold, as one entry; None when nothing
    does. The caller holds the movement's row lock (or is its only writer)."""
    if not source:
        return None
    entries = JournalEntry.objects.filter(project_id=project_id, source=source, kind=kind)
    held = dict(
        JournalLine.objects.filter(entry__in=entries)
        .values("account")
        .annotate(total=Sum("amount"))
        .values_list("account", "total")
    )
    moved = difference(postings, held)
    if not moved:
        return None
    with transaction.atomic(savepoint=False):
        entry = JournalEntry(
            project_id=project_id,
            kind=kind,
            source=source,
            revision=entries.count() + 1,
            currency=currency,
            effective_at=effective_at or timezone.now(),
        )
        JournalEntry.objects.bulk_create([entry])  # as its lines: one insert, no save() of the model's guards
        JournalLine.objects.bulk_create(
            JournalLine(entry=entry, account=account, amount=amount)
            for account, amount in sorted(moved.items())
        )
    return entry


@dataclass(frozen=True)
class _Movements:
    """A model's money movements: the object they are keyed by, their kinds with what each should hold, and
    their date (None: when Tollgate learns of them)."""

    source: Callable[[Any], str]
    kinds: tuple[tuple[str, Callable[[Any], Postings]], ...]
    effective_at: Callable[[Any], datetime | None] = lambda row: None


def _payment_source(payment: Payment) -> str:
    """A payment's movements are keyed by Tollgate's id of it: its Stripe ids arrive one by one (a Checkout
    Session's PaymentIntent at completion, a subscription's invoice when it is paid), its own id never changes."""
    return str(payment.pk)


_INVOICES = _Movements(
    lambda i: i.stripe_invoice_id,
    ((EntryKind.INVOICE, invoice_postings), (EntryKind.UNCOLLECTIBLE, uncollectible_postings)),
)
_PAYMENTS = _Movements(
    _payment_source, ((EntryKind.PAYMENT, payment_postings), (EntryKind.DISPUTE, dispute_postings))
)
_REFUNDS = _Movements(lambda r: r.stripe_refund_id, ((EntryKind.REFUND, refund_postings),))
_CREDIT_NOTES = _Movements(
    lambda n: n.stripe_credit_note_id, ((EntryKind.CREDIT_NOTE, credit_note_postings),)
)
_FEES = _Movements(
    lambda t: t.stripe_balance_transaction_id, ((EntryKind.FEE, fee_postings),), lambda t: t.created_at
)


def _journal(movements: _Movements, row: Any) -> None:
    for kind, postings in movements.kinds:
        post(
            project_id=row.project_id,
            kind=kind,
            source=movements.source(row),
            currency=row.currency,
            postings=postings(row),
            effective_at=movements.effective_at(row),
        )


def journal_invoice(invoice: Invoice) -> None:
    if invoice.status != "draft":  # a draft was never issued (none goes back to draft): nothing to read
        _journal(_INVOICES, invoice)


def journal_payment(payment: Payment) -> None:
    if (
        payment.status not in Payment.OPEN_STATUSES or payment.dispute_status
    ):  # one never paid: nothing to post
        _journal(_PAYMENTS, payment)


def journal_refund(refund: Refund) -> None:
    _journal(_REFUNDS, refund)


def journal_credit_note(note: CreditNote) -> None:
    _journal(_CREDIT_NOTES, note)


def journal_fee(txn: BalanceTransaction) -> None:
    _journal(_FEES, txn)


def _held(project_id: str, kind: str) -> dict[str, Postings]:
    """What each movement of `kind` holds per account, from its entries (one query)."""
    held: dict[str, Postings] = defaultdict(dict)
    lines = (
        JournalLine.objects.filter(entry__project_id=project_id, entry__kind=kind)
        .values("entry__source", "account")
        .annotate(total=Sum("amount"))
    )
    for line in lines:
        if line["total"]:
            held[line["entry__source"]][line["account"]] = line["total"]
    return held


def _repair(project_id: str, rows: QuerySet[Any], movements: _Movements) -> list[tuple[str, str]]:
    held = {kind: _held(project_id, kind) for kind, _ in movements.kinds}
    repaired = []
    for row in rows.iterator():
        source = movements.source(row)
        differing = [
            kind for kind, postings in movements.kinds if held[kind].get(source, {}) != postings(row)
        ]
        if not differing:
            continue
        with transaction.atomic():
            _journal(movements, type(row).objects.select_for_update().get(pk=row.pk))
        repaired += [(kind, source) for kind in differing]
    return repaired


def journal_repair(project_id: str) -> list[tuple[str, str]]:
    """Posts what the project's movements still differ by (rows written around the writers: an upgrade's, a
    restore's), each under its row lock as its writer holds it; returns the (kind, object) of each movement it
    posted. Reads every row once and the journal's sums once per kind: a movement that agrees is not locked."""
    return [
        *_repair(
            project_id, Invoice.objects.filter(project_id=project_id).exclude(status="draft"), _INVOICES
        ),
        *_repair(project_id, Payment.objects.filter(project_id=project_id), _PAYMENTS),
        *_repair(
            project_id, Refund.objects.filter(project_id=project_id).exclude(stripe_refund_id=""), _REFUNDS
        ),
        *_repair(project_id, CreditNote.objects.filter(project_id=project_id), _CREDIT_NOTES),
        *_repair(project_id, BalanceTransaction.objects.filter(project_id=project_id).exclude(fee=0), _FEES),
    ]


# The columns of an export, one row per line of an entry.
EXPORT_COLUMNS = (
    "entry",
    "posted_at",
    "effective_at",
    "kind",
    "source",
    "revision",
    "currency",
    "account_code",
    "account",
    "debit",
    "credit",
)


def _decimal(amount: int, currency: str) -> str:
    """Minor units as the major-unit decimal a bookkeeping import reads ("30.00", "1500" for yen); "" for 0."""
    if not amount:
        return ""
    exponent = minor_unit_exponent(currency)
    whole, fraction = divmod(amount, 10**exponent)
    return f"{whole}.{fraction:0{exponent}d}" if exponent else str(whole)


def journal_lines(
    project_id: str, *, start: datetime, end: datetime, money: Callable[[int, str], Any]
) -> Iterator[tuple[Any, ...]]:
    """The project's journal lines of the entries effective in [start, end), in posting order, in the export's
    columns (`EXPORT_COLUMNS`) as values: the times as datetimes, the revision as a number, each account with its
    number and name in the chart, and `money(amount, currency)` of the debit or the credit (None on the other
    side)."""
    lines = (
        JournalLine.objects.filter(
            entry__project_id=project_id, entry__effective_at__gte=start, entry__effective_at__lt=end
        )
        .order_by("entry__effective_at", "entry__created_at", "entry_id", "account")
        .values_list(
            "entry_id",
            "entry__created_at",
            "entry__effective_at",
            "entry__kind",
            "entry__source",
            "entry__revision",
            "entry__currency",
            "account",
            "amount",
        )
    )
    accounts = {account: (ACCOUNT_CODES[account], account.label) for account in Account}
    for *entry, currency, account, amount in lines.iterator(chunk_size=5000):
        code, label = accounts[Account(account)]
        yield (
            *entry,
            currency,
            code,
            label,
            money(amount, currency) if amount > 0 else None,
            money(-amount, currency) if amount < 0 else None,
        )


def journal_rows(project_id: str, *, start: datetime, end: datetime) -> Iterator[tuple[str, ...]]:
    """`journal_lines` as CSV rows: text, the debit or the credit in major units, never both ("" for the other)."""
    for entry, posted, effective, kind, source, revision, *rest, debit, credit in journal_lines(
        project_id, start=start, end=end, money=_decimal
    ):
        yield (
            entry,
            posted.isoformat(),
            effective.isoformat(),
            kind,
            source,
            str(revision),
            *rest,
            debit or "",
            credit or "",
        )
