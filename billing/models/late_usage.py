"""Usage billed on the next invoice because Stripe had invoiced its period before it was reported
(`billing.services.late_usage`)."""

from django.db import models


class LateUsageCharge(models.Model):
    """One usage event still to report to Stripe's meter when its period was invoiced (its reports failed, or waited
    out a backoff, past the period's end): the meter would take it into a period already billed, so the customer's
    next invoice bills it instead, as a pending invoice item of the units' price at the terms that billed the
    period. Written with the event's move to reported, in one transaction (one charge per event: the unique usage
    event); the item is made after, under a key of the charge, so a retry whose answer was lost is Stripe's replay."""

    class Status(models.TextChoices):
        PENDING = "pending", "invoice item to make"
        CREATED = "created", "on the next invoice"
        NOTHING = "nothing", "nothing to bill"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="+")
    usage_event_id = models.CharField(max_length=40, unique=True, verbose_name="usage event")
    event_id = models.CharField(max_length=255, verbose_name="event ID (the tenant's)")
    period_end = models.DateTimeField(verbose_name="invoiced period until")
    quantity = models.BigIntegerField(verbose_name="units billed")
    amount = models.BigIntegerField(verbose_name="amount (minor units)")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    stripe_invoice_item = models.CharField(max_length=255, blank=True, verbose_name="invoice item at Stripe")
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name="tries")
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name="next try")
    error = models.CharField(max_length=500, blank=True, verbose_name="Stripe error")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="charged")
    billed_at = models.DateTimeField(null=True, blank=True, verbose_name="invoice item made")

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="late_usage_due")]
        verbose_name = "late usage charge"
        verbose_name_plural = "late usage charges"

    def __str__(self) -> str:
        return f"{self.event_id}: {self.amount} {self.currency}"
