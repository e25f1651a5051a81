"""The double-entry journal of a project's money: every movement Tollgate mirrors from Stripe (an invoice issued,
voided or written off, a payment, a refund, a credit note, a dispute, a Stripe fee) and the revenue its paid lines
earned each month (`billing.services.journal_recognition`) as entries whose lines add up to zero, in a chart of
accounts a bookkeeping system imports (`ACCOUNT_CODES`).

Entries are never changed or removed (a database trigger refuses an update on PostgreSQL; they go only with their
project). What a Stripe object's movement should hold in each account is recomputed from the mirror whenever it
changes, and the difference from what its entries already hold is posted as one more entry
(`billing.services.journal`): a duplicated or late event posts nothing, a reversal (a voided invoice, a failed
refund, a won dispute) is an entry of its own, and the entries of one object and kind are numbered by `revision`.
"""

from django.db import models

from core.ids import PublicIdField


class Account(models.TextChoices):
    """The chart of accounts. Debits are positive amounts, credits negative."""

    STRIPE_BALANCE = "stripe_balance", "Cash at Stripe"
    RECEIVABLES = "receivables", "Accounts receivable"
    DEFERRED_REVENUE = "deferred_revenue", "Deferred revenue"
    CUSTOMER_BALANCE = "customer_balance", "Customer balances"
    TAX_PAYABLE = "tax_payable", "Tax collected"
    REFUNDS_OUTSIDE_STRIPE = "refunds_outside_stripe", "Refunds owed outside Stripe"
    PREPAID_CREDITS = "prepaid_credits", "Prepaid credits"
    REVENUE = "revenue", "Revenue recognised"
    REFUNDS = "refunds", "Refunds and credit notes"
    STRIPE_FEES = "stripe_fees", "Stripe fees"
    DISPUTES = "disputes", "Disputes"
    BAD_DEBT = "bad_debt", "Uncollectible invoices"


# Each account's number in the exported chart (assets 1xxx, liabilities 2xxx, revenue and contra-revenue 4xxx,
# expenses 6xxx).
ACCOUNT_CODES = {
    Account.STRIPE_BALANCE: "1010",
    Account.RECEIVABLES: "1200",
    Account.DEFERRED_REVENUE: "2100",
    Account.CUSTOMER_BALANCE: "2200",
    Account.TAX_PAYABLE: "2300",
    Account.REFUNDS_OUTSIDE_STRIPE: "2400",
    Account.PREPAID_CREDITS: "2500",
    Account.REVENUE: "4000",
    Account.REFUNDS: "4900",
    Account.STRIPE_FEES: "6100",
    Account.DISPUTES: "6200",
    Account.BAD_DEBT: "6300",
}


class EntryKind(models.TextChoices):
    """Which movement of its Stripe object an entry posts."""

    INVOICE = "invoice", "Invoice issued"
    UNCOLLECTIBLE = "uncollectible", "Invoice uncollectible"
    PAYMENT = "payment", "Payment"
    REFUND = "refund", "Refund"
    CREDIT_NOTE = "credit_note", "Credit note"
    DISPUTE = "dispute", "Dispute"
    FEE = "fee", "Stripe fee"
    RECOGNITION = "recognition", "Revenue recognised"


class JournalEntry(models.Model):
    """One posting of one movement: its lines add up to zero."""

    id = PublicIdField(prefix="je")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=EntryKind.choices)
    # The object the movement is of: Stripe's (in_, re_, cn_, txn_ …), or Tollgate's payment (pay_) for a payment
    # and its disputes; and the entry's number among its movement's.
    source = models.CharField(max_length=255, verbose_name="object")
    revision = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    # When the movement happened as far as the books go: when Tollgate learnt of it, Stripe's time for a fee, the
    # month's last moment for the revenue it recognised.
    effective_at = models.DateTimeField(verbose_name="effective")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="posted")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "source", "kind", "revision"], name="journal_entry_revision_unique"
            )
        ]
        indexes = [
            models.Index(fields=["project", "effective_at"], name="journal_entry_period"),
            models.Index(fields=["project", "source", "kind"], name="journal_entry_source"),
            # The stream (GET /journal/entries) in posting order: a page after a cursor is one bounded scan.
            models.Index(fields=["project", "created_at", "id"], name="journal_entry_posted"),
        ]
        verbose_name = "journal entry"
        verbose_name_plural = "journal entries"

    def __str__(self) -> str:
        return self.id

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not self._state.adding:
            raise ValueError("A journal entry is never changed: post a new one.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise ValueError("A journal entry is never removed: post a new one.")


class JournalLine(models.Model):
    """One account's side of an entry: a debit (positive) or a credit (negative), in minor units."""

    entry = models.ForeignKey(JournalEntry, on_delete=models.CASCADE, related_name="lines")
    account = models.CharField(max_length=30, choices=Account.choices)
    amount = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entry", "account"], name="journal_line_account_unique"),
            models.CheckConstraint(condition=~models.Q(amount=0), name="journal_line_not_zero"),
        ]
        verbose_name = "journal line"
        verbose_name_plural = "journal lines"

    def __str__(self) -> str:
        return f"{'Debit' if self.amount > 0 else 'Credit'} {Account(self.account).label}"

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not self._state.adding:
            raise ValueError("A journal line is never changed: post a new entry.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise ValueError("A journal line is never removed: post a new entry.")
