"""Usage windows' counters: how much of a metered feature a customer used in the current calendar window of each
size (`catalog.rules.WINDOW_SECONDS`). One row per customer, feature and window size, moved to the next window
by the statement that first counts in it (`services.windows`): no row per window, nothing to sweep."""

from django.db import models


class UsageWindowCounter(models.Model):
    """Units used in the window starting at `window_start` (held units included; `held` says how many)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="+")
    span = models.CharField(max_length=8)  # minute, hour, day or week
    window_start = models.DateTimeField(verbose_name="window from")
    used = models.BigIntegerField(default=0)
    held = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(verbose_name="updated")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "feature", "span"], name="usage_window_unique"),
            models.CheckConstraint(condition=models.Q(used__gte=0), name="usage_window_not_negative"),
            models.CheckConstraint(
                condition=models.Q(held__gte=0, held__lte=models.F("used")), name="usage_window_held_within"
            ),
        ]
        verbose_name = "usage window counter"
        verbose_name_plural = "usage window counters"

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.feature_id}:{self.span}"
