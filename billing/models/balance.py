"""Stripe's balance transactions, mirrored: the money that moved through a project's Stripe account (a charge's
funds, a refund's, a dispute's withdrawal and reinstatement) with Stripe's fee and the net that reached the
balance. Read from Stripe (`billing.services.tie_out.balance_sync`), never written from our own objects, so the
tie-out compares what Tollgate holds with what Stripe counted, to the cent.
"""

from django.db import models


class BalanceTransaction(models.Model):
    """One Stripe balance transaction of a project's money, as Stripe has it. Stripe never changes one's amounts;
    only its `status` moves (`pending` → `available` on `available_on`)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    stripe_balance_transaction_id = models.CharField(
        max_length=255, verbose_name="Stripe balance transaction"
    )

    # Stripe's `type` (charge, refund, refund_failure, adjustment …) and `reporting_category` (charge, refund,
    # refund_failure, dispute, dispute_reversal …).
    class Category(models.TextChoices):
        CHARGE = "charge"
        REFUND = "refund"
        REFUND_FAILURE = "refund_failure", "Refund failure"
        DISPUTE = "dispute"
        DISPUTE_REVERSAL = "dispute_reversal", "Dispute reversal"

    class Status(models.TextChoices):
        PENDING = "pending"
        AVAILABLE = "available"

    type = models.CharField(max_length=40)
    reporting_category = models.CharField(
        max_length=40, choices=Category.choices, verbose_name="reporting category"
    )
    status = models.CharField(max_length=20, choices=Status.choices)
    # The Stripe object that moved the money (ch_, re_, du_ …) and the PaymentIntent it belongs to.
    source = models.CharField(max_length=255, blank=True)
    payment_intent = models.CharField(max_length=255, blank=True, verbose_name="Stripe payment intent")
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()
    fee = models.BigIntegerField(default=0)
    net = models.BigIntegerField()
    fee_details = models.JSONField(default=list, blank=True)
    description = models.CharField(max_length=500, blank=True)
    # Stripe's times (a test clock's for its customers' objects).
    created_at = models.DateTimeField(verbose_name="created at Stripe")
    available_on = models.DateTimeField(verbose_name="available on")
    synced_at = models.DateTimeField(auto_now=True, verbose_name="read from Stripe")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "stripe_balance_transaction_id"],
                name="balance_transaction_unique",
            )
        ]
        indexes = [
            models.Index(fields=["project", "created_at"], name="balance_transaction_period"),
            models.Index(fields=["project", "source"], name="balance_transaction_source"),
        ]
        ordering = ["-created_at", "-id"]
        verbose_name = "Stripe balance transaction"
        verbose_name_plural = "Stripe balance transactions"

    def __str__(self) -> str:
        return self.stripe_balance_transaction_id
