"""Revenue figures kept as the events arrive: what a project earned, refunded and bills by the month, per currency
and UTC day, so that reading them costs the same at 20 subscriptions and at 20,000.

Each payment, refund and subscription records on its own row what it has counted (`revenue_counted` and
`revenue_day`, `mrr_counted` and `mrr_currency`; a subscription counts as active while its `mrr_currency` is
set). A change to what it should count adds a `RevenueChange` to the
journal in the same transaction (the old figure taken back, the new one added), so the figures follow every
committed change exactly once, and writers never wait for each other on a shared total. `revenue_fold` moves the
journal into `RevenueTotal`, one row per (project, figure, currency, day); the figures are the totals plus what
the journal still holds (`billing.services.revenue_figures`).
"""

from django.db import models


class Figure(models.TextChoices):
    # Paid payments by the day they succeeded, in minor units.
    REVENUE = "revenue"
    # Refunds as Stripe counts them in a charge's amount_refunded, by the day they were made, in minor units.
    REFUNDS = "refunds"
    # Monthly recurring revenue by the day it changed, in millionths of a minor unit (a yearly price bills a
    # twelfth of its amount each month, which is rarely a whole minor unit).
    MRR = "mrr"
    # Live subscriptions (those counted in MRR), by the day they started or stopped being live; currency "".
    ACTIVE = "active"


class RevenueChange(models.Model):
    """One change to a figure, not yet folded into its total."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    figure = models.CharField(max_length=10, choices=Figure.choices)
    currency = models.CharField(max_length=3)
    day = models.DateField()
    amount = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["project", "figure", "day"], name="revenue_change_figure")]
        verbose_name = "revenue change"
        verbose_name_plural = "revenue changes"

    def __str__(self) -> str:
        return f"{self.figure} {self.amount:+} {self.currency} {self.day}"


class RevenueTotal(models.Model):
    """A figure of a project's day in one currency, as folded from the journal."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    figure = models.CharField(max_length=10, choices=Figure.choices)
    currency = models.CharField(max_length=3)
    day = models.DateField()
    amount = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "figure", "day", "currency"], name="revenue_total_unique"
            )
        ]
        verbose_name = "revenue total"
        verbose_name_plural = "revenue totals"

    def __str__(self) -> str:
        return f"{self.figure} {self.amount} {self.currency} {self.day}"
