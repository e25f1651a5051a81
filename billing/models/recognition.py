"""Revenue recognition: what each paid line earns, day by day, over the service it pays for.

A `RevenueSchedule` is one line's money (tax aside, its share of the invoice's discounts taken off) and the days it
pays for: a subscription invoice's line over its service period, a one-off purchase at fulfilment or over its
access period. A refund or credit note is a schedule of its own with a negative amount (`reverses` names the one it
takes back): what is still deferred of its line is taken back over the rest of the period, and what was already
recognised, on the day of the reversal (`immediate`). A subscription that ended before the period it paid for ends
is recognised in full on the day it ended (`stopped_on`): nothing more is owed in service. Prepaid credits bought
(`credit_purchase`) are a liability until they are spent or expire.

The schedules are written from the mirror (`billing.services.recognition`): recomputed whenever their invoice,
payment, refunds, credit notes or subscription changed, and stored by difference, so a replayed event changes
nothing. How much a schedule has recognised by a day is a formula of its columns (`recognised_by`), so a month's
report reads each schedule once, whatever its length.
"""

from datetime import date

from django.db import models


class RevenueSchedule(models.Model):
    class Kind(models.TextChoices):
        SUBSCRIPTION = "subscription", "subscription line"
        ONE_OFF = "one_off", "one-off purchase"
        CREDITS = "credits", "prepaid credits"
        REVERSAL = "reversal", "refund or credit note"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    # The line's key: `<document>:<line>`, and a reversal's `<refund or credit note>:<line's key>`.
    key = models.CharField(max_length=255)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # The Stripe invoice or Tollgate payment the line is of (a reversal: its refund or credit note).
    document = models.CharField(max_length=255)
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="reversals"
    )
    product = models.ForeignKey(
        "catalog.Product", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    description = models.CharField(max_length=500, blank=True)
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()  # minor units; negative for a reversal
    # Of `amount`, what is recognised on the day it is booked (a reversal of revenue already recognised).
    immediate = models.BigIntegerField(default=0)
    # The service days [start_day, end_day), recognised evenly; end_day == start_day: all at once.
    start_day = models.DateField()
    end_day = models.DateField()
    # The day the money was earned or given back (an invoice paid, a payment succeeded, a refund made): nothing is
    # recognised before it, then everything due by then at once.
    booked_on = models.DateField()
    # The subscription ended before the line's period: the rest recognised that day.
    stopped_on = models.DateField(null=True, blank=True)
    # Prepaid credits (a `credits` line and its reversals): the purchase whose credits the line paid for. Not
    # revenue but a liability, recognised as the credits are spent or expire (`recognition_credits`), so the day
    # formula does not apply: a reversal of one is recognised `immediate` on its day, the rest leaves the liability.
    credit_purchase = models.CharField(max_length=40, blank=True, verbose_name="purchase of credits")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "key"], name="revenue_schedule_key_unique")]
        indexes = [
            models.Index(fields=["project", "booked_on"], name="revenue_schedule_booked"),
            models.Index(fields=["project", "end_day"], name="revenue_schedule_ends"),
            models.Index(fields=["project", "document"], name="revenue_schedule_document"),
        ]
        verbose_name = "revenue schedule"
        verbose_name_plural = "revenue schedules"

    def __str__(self) -> str:
        return self.key

    def recognised_by(self, day: date) -> int:
        """What the schedule has recognised by the end of `day`, in minor units (not for prepaid credits' lines,
        which follow the credits' use)."""
        return recognised_by(day=day, **{name: getattr(self, name) for name in SCHEDULE_TIMING})


# The columns `recognised_by` reads of a schedule.
SCHEDULE_TIMING = ("amount", "immediate", "start_day", "end_day", "booked_on", "stopped_on")


def recognised_by(
    *,
    amount: int,
    immediate: int,
    start_day: date,
    end_day: date,
    booked_on: date,
    stopped_on: date | None,
    day: date,
) -> int:
    """What a schedule of these columns has recognised by the end of `day`: `immediate` and the days of its period
    elapsed (whole minor units, rounded towards zero, the last day completing it), from the day it is booked."""
    if day < booked_on:
        return 0
    if stopped_on is not None and day >= stopped_on:
        return amount
    days = (end_day - start_day).days
    if days <= 0:
        return amount
    elapsed = min(max((day - start_day).days + 1, 0), days)
    rest = amount - immediate
    part = abs(rest) * elapsed // days
    return immediate + (part if rest >= 0 else -part)


class RecognitionCursor(models.Model):
    """How far a project's schedules are written: every row of the mirror changed before `synced_to` is in them."""

    project = models.OneToOneField(
        "projects.Project", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    synced_to = models.DateTimeField()
    # The journal's recognition entries (`billing.services.journal_recognition`): the last month posted (its first
    # day), and when.
    journal_month = models.DateField(null=True, blank=True)
    journal_posted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "recognition cursor"
        verbose_name_plural = "recognition cursors"

    def __str__(self) -> str:
        return f"{self.project_id}: {self.synced_to:%Y-%m-%d %H:%M:%S}"
