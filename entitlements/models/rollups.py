"""Period totals of usage by Stripe-meter status (`UsageMeterTotal`): what `GET /usage` reads instead of summing
the period's usage events."""

from django.db import models


class UsageMeterTotal(models.Model):
    """The total quantity of a customer's usage events of a metered feature in one period whose Stripe-meter
    status is `meter_status` (pending, reported, skipped or failed; events no meter bills are not counted).

    Changed only by relative single statements (`quantity = quantity + n`), in the transaction that changes the
    events: recording them (`services.counters._events_insert`, `tollgate_metered_consume`), moving them between
    statuses (`services.meter_totals.meter_status_move`, which billing's reporter calls), dropping their month
    (`services.usage_partitions`). `manage.py usage_meter_totals` recomputes them from the events and reports
    (and with `--fix` repairs) any drift. No check keeps it at or above zero: a total that drifted (an event changed
    by hand) must not stop the reporter; the command finds it."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="+")
    period_start = models.DateTimeField(verbose_name="period from")
    meter_status = models.CharField(max_length=10, verbose_name="Stripe meter")
    quantity = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "feature", "period_start", "meter_status"],
                name="usage_meter_total_unique",
            ),
        ]
        verbose_name = "usage meter total"
        verbose_name_plural = "usage meter totals"

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.feature_id}:{self.period_start:%Y-%m-%d}:{self.meter_status}"
