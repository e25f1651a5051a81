"""Corrections of recorded usage: a usage event voided or amended by its id (`services.usage_corrections`)."""

from django.db import models

from core.ids import PublicIdField


class UsageCorrection(models.Model):
    """One correction of a usage event: its quantity from `quantity_before` to `quantity_after` (0: voided),
        idempotent by the tenant's `correction_id` within the project. The event keeps the corrected quantity (every
        sum over events reads it); the correction keeps what it was, so `as_of` history before the correction still
        answers what was known then. `meter`: what Stripe's meter needs — nothing (`none`: the event never reached
        it, or the reporter sends the corrected quantity), a cancellation of what it was sent and, for an amount
        left, a replacement meter event under the correction's id (`pending` until done: `adjusted`); or, where Stripe
    has invoiced it and the tenant asked for it, an adjustment of the customer's next invoice (`invoiced`)."""

    class Action(models.TextChoices):
        VOID = "void"
        AMEND = "amend"
        # Made by Tollgate, not the tenant: allowance another correction freed pays units of this event credits
        # had paid, which Stripe's meter already held (its quantity unchanged; `correction_id` is
        # "{that correction's pk}:{this event's pk}"). Stripe's meter gets them as a meter event of its own.
        ALLOWANCE = "allowance", "Allowance freed by another correction"

    class Meter(models.TextChoices):
        NONE = "none", "Nothing to correct at Stripe"
        PENDING = "pending"
        ADJUSTED = "adjusted"
        INVOICED = "invoiced", "Invoiced: adjusted on the next invoice"

    class Adjustment(models.TextChoices):
        NONE = "", "None"
        PENDING = "pending"
        CREATED = "created"

    id = PublicIdField(prefix="ucor")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="+")
    correction_id = models.CharField(max_length=255, verbose_name="correction ID (the tenant's)")
    # The event, by value: the usage-event table is partitioned on PostgreSQL (no foreign key can reach it).
    usage_event_id = models.CharField(max_length=40, verbose_name="usage event")
    event_id = models.CharField(max_length=255, verbose_name="event ID (the tenant's)")
    event_timestamp = models.DateTimeField()
    event_created_at = models.DateTimeField(verbose_name="event received")
    period_start = models.DateTimeField(null=True, blank=True, verbose_name="counted in the period from")
    action = models.CharField(max_length=10, choices=Action.choices)
    quantity_before = models.BigIntegerField()
    quantity_after = models.BigIntegerField()
    reason = models.CharField(max_length=500)
    # A credits waterfall's: the event's units paid from credits before and after (its `covered`), and the credits
    # that moved with them (+ given back to the lots they came from, − taken for units added), of `credits_feature`.
    covered_before = models.BigIntegerField(default=0, db_default=0, verbose_name="paid with credits before")
    covered_after = models.BigIntegerField(default=0, db_default=0, verbose_name="paid with credits after")
    credits_returned = models.BigIntegerField(default=0, db_default=0, verbose_name="credits given back")
    # A correction down that frees some of the period's allowance: the period's later events whose units credits
    # had paid the allowance pays now (the latest first), each {"usage_event": pk, "event": the tenant's id,
    # "created_at": when it was recorded (ISO 8601), "units": n, "credits": the credits given back for them}.
    moved = models.JSONField(
        default=list, blank=True, db_default=[], verbose_name="later units the allowance pays now"
    )

    credits_feature = models.ForeignKey(
        "catalog.Feature", on_delete=models.SET_NULL, related_name="+", null=True, blank=True, db_index=False
    )
    # Usage thresholds the event had crossed and the corrected use no longer reaches (labels, lowest first).
    thresholds_uncrossed = models.JSONField(default=list, blank=True)
    meter = models.CharField(
        max_length=10, choices=Meter.choices, default=Meter.NONE, verbose_name="Stripe meter"
    )
    # The event's report attempts when it was corrected: one more since says no report is in flight.
    meter_attempts_seen = models.PositiveSmallIntegerField(default=0)
    meter_claimed_until = models.DateTimeField(null=True, blank=True)  # a worker is writing to Stripe
    meter_error = models.CharField(max_length=500, blank=True, verbose_name="Stripe meter error")
    meter_adjusted_at = models.DateTimeField(null=True, blank=True, verbose_name="corrected at Stripe")
    # Where Stripe invoiced the event already (asked for with `invoiced: "credit"`): what the corrected units
    # change of what its metered price billed, as an invoice item (negative: a credit) on the customer's next
    # invoice, made after the commit under a key of the correction.
    adjustment_amount = models.BigIntegerField(null=True, blank=True, verbose_name="next invoice adjustment")
    adjustment_currency = models.CharField(max_length=3, blank=True)
    adjustment_status = models.CharField(max_length=10, choices=Adjustment.choices, default="", blank=True)
    adjustment_item = models.CharField(max_length=255, blank=True, verbose_name="Stripe invoice item")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "correction_id"], name="usage_correction_unique"),
            models.CheckConstraint(
                condition=models.Q(quantity_after__gte=0), name="usage_correction_not_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["project", "usage_event_id"], name="usage_correction_event"),
            models.Index(fields=["customer", "created_at"], name="usage_correction_customer"),
            models.Index(
                fields=["meter"],
                name="usage_correction_meter",
                condition=models.Q(meter="pending") | models.Q(adjustment_status="pending"),
            ),
        ]
        verbose_name = "usage correction"
        verbose_name_plural = "usage corrections"

    def __str__(self) -> str:
        return self.id
