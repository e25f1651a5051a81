"""Margin alerts: a customer's month announced as `customer.margin_low` (billing.services.margin_alerts)."""

from django.db import models


class MarginAlert(models.Model):
    """A customer's margin announced as below their project's threshold, for one UTC month and currency. The
    unique constraint lets each one through once, whatever the margin does afterwards, however often the check
    runs and whichever of two workers gets there first; the row is written in the transaction that records the
    event. The figures are those the event carried."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=7, verbose_name="month")  # "2026-05", UTC
    currency = models.CharField(max_length=3)
    billed_micros = models.BigIntegerField(verbose_name="billed (micro-units)")
    cost_micros = models.BigIntegerField(verbose_name="cost (micro-units)")
    margin_bps = models.IntegerField(null=True, blank=True, verbose_name="margin (basis points)")
    threshold_bps = models.IntegerField(verbose_name="threshold (basis points)")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="announced")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "period", "currency"], name="margin_alert_once")
        ]
        verbose_name = "margin alert"
        verbose_name_plural = "margin alerts"

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.period}:{self.currency}"
