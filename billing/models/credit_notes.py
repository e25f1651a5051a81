"""Credit notes of invoices, mirrored from Stripe: what a finalized invoice was credited, and how."""

from django.db import models

from core.ids import PublicIdField


class CreditNote(models.Model):
    """A mirror of a Stripe credit note: a reduction of an open or paid invoice, given out as a lower amount due
    (`pre_payment_amount`) and, past what was still owed, as a refund to the card, a credit to the customer's
    balance or money settled outside Stripe (`post_payment_amount`). Issued, then possibly voided (final)."""

    class Status(models.TextChoices):
        ISSUED = "issued"
        VOID = "void"

    id = PublicIdField(prefix="crn")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="credit_notes")
    invoice = models.ForeignKey("billing.Invoice", on_delete=models.PROTECT, related_name="credit_notes")
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="credit_notes")
    stripe_credit_note_id = models.CharField(max_length=255, verbose_name="Stripe credit note")
    number = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    # Stripe's `type`: pre_payment | post_payment | mixed.
    type = models.CharField(max_length=20, blank=True)
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField(default=0)
    subtotal = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    pre_payment_amount = models.BigIntegerField(default=0, verbose_name="before payment")
    post_payment_amount = models.BigIntegerField(default=0, verbose_name="after payment")
    # The sum of the refunds Stripe lists on the credit note.
    refund_amount = models.BigIntegerField(default=0, verbose_name="refunded")
    # What the customer's balance was credited (its `credit_note` balance transaction, positive here).
    credit_amount = models.BigIntegerField(default=0, verbose_name="credited to balance")
    out_of_band_amount = models.BigIntegerField(default=0, verbose_name="settled outside Stripe")
    reason = models.CharField(max_length=50, blank=True)
    memo = models.TextField(blank=True)
    lines = models.JSONField(default=list, blank=True)
    stripe_event_created = models.BigIntegerField(
        default=0, verbose_name="newest Stripe event applied (Unix time)"
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "stripe_credit_note_id"], name="credit_note_stripe_id_unique"
            )
        ]
        indexes = [models.Index(fields=["project", "created_at", "id"], name="credit_note_list_page")]
        verbose_name = "credit note"
        verbose_name_plural = "credit notes"

    def __str__(self) -> str:
        return self.number or self.id
