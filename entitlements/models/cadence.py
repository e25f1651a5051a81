"""Plan credits on a cadence of their own: a paid period whose product grants a credits feature every month or
week (`ProductFeature.cadence`) is cut into slices when it is recorded, each a row with its due time. A slice is
granted (one lot, expiring at the slice's end) by the statement that records the period when it is due already,
else by the beat's sweep, which claims due slices `FOR UPDATE SKIP LOCKED` (`services.plan_credits`). A refund of
the period, or the subscription's end before a slice starts, stops it (`stopped_at`)."""

from django.db import models

from core.ids import PublicIdField
from entitlements.models.records import CreditLot, PlanPeriod


class PlanCreditSlice(models.Model):
    """One month or week of a paid period's credits of one feature (or the whole period, for a feature granted
    once a period whose plan gives each entity credits): `amount` from `starts_at` (its due time) to `ends_at`,
    pro-rated where the period starts inside a month or week; granted once (`lot`, `granted_at`; each entity's
    `entity_lots`) or stopped before it was (`stopped_at`, `stop_reason`)."""

    id = PublicIdField(prefix="plsl")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="+")
    plan_period = models.ForeignKey(
        PlanPeriod, on_delete=models.CASCADE, related_name="slices", verbose_name="paid plan period"
    )
    index = models.PositiveSmallIntegerField()  # 0 for the period's first slice
    starts_at = models.DateTimeField(verbose_name="granted from")
    ends_at = models.DateTimeField(verbose_name="expires")
    amount = models.BigIntegerField()
    # Taken back as it is granted: what a period this one cut short (a switch monthly ↔ yearly) granted for its
    # unused time and the customer had spent (`plan_credits._periods_replaced`).
    owed = models.BigIntegerField(default=0, db_default=0)
    rollover = models.PositiveBigIntegerField(null=True, blank=True, verbose_name="rollover cap")
    # Where the plan gives each entity of an allocation feature credits of its own (`per_entity.credits`): what
    # each live entity is granted with the slice (up to the allocation's limit), and what each owes as `owed`.
    entity_amount = models.BigIntegerField(default=0, db_default=0, verbose_name="credits per entity")
    entity_owed = models.JSONField(default=dict, blank=True, db_default={})
    lot = models.OneToOneField(
        CreditLot, null=True, blank=True, on_delete=models.SET_NULL, related_name="slice", verbose_name="lot"
    )
    granted_at = models.DateTimeField(null=True, blank=True, verbose_name="granted")
    stopped_at = models.DateTimeField(null=True, blank=True, verbose_name="stopped")
    stop_reason = models.CharField(max_length=500, blank=True, verbose_name="why stopped")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")

    class Meta:
        constraints = [
            # The fulfilment key of a slice: one per period, feature and position.
            models.UniqueConstraint(
                fields=["plan_period", "feature", "index"], name="plan_credit_slice_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(amount__gte=0, owed__gte=0, owed__lte=models.F("amount")),
                name="plan_credit_slice_amount",
            ),
        ]
        indexes = [
            # The sweep's claim: the slices still to grant, by due time.
            models.Index(
                fields=["starts_at"],
                condition=models.Q(granted_at__isnull=True, stopped_at__isnull=True),
                name="plan_credit_slice_due",
            )
        ]
        ordering = ["starts_at", "pk"]
        verbose_name = "scheduled credit grant"
        verbose_name_plural = "scheduled credit grants"

    def __str__(self) -> str:
        return self.id
