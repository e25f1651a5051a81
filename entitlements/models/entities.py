"""A customer's entities (their seats, workspaces, projects, by the tenant's own ids), each counted by an
allocation feature (`Entity`), and each entity's use of a metered feature with a limit per entity in one period
(`EntityCounter`). An entity's counter is keyed by the tenant's id, not by the row: an id removed and added again
within a period finds its use there, so removing a seat never gives it a fresh allowance."""

from django.db import models


class Entity(models.Model):
    """One of a customer's entities: `external_id` is the tenant's id for it (unique among the customer's live
    entities); `feature` the allocation feature that counts it (one unit of it while it lives); `removed_at`
    set when it is removed (its unit given back)."""

    id = models.CharField(primary_key=True, max_length=40, verbose_name="ID")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="entities")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.PROTECT, related_name="+")
    external_id = models.CharField(max_length=255, verbose_name="entity ID (the tenant's)")
    name = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="added")
    removed_at = models.DateTimeField(null=True, blank=True, verbose_name="removed")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "external_id"],
                condition=models.Q(removed_at__isnull=True),
                name="entity_live_unique",
            )
        ]
        indexes = [models.Index(fields=["customer", "feature", "removed_at"], name="entity_by_feature")]
        verbose_name = "entity"
        verbose_name_plural = "entities"

    def __str__(self) -> str:
        return self.external_id


class EntityCounter(models.Model):
    """How much of a metered feature one entity (by the tenant's id) used in one period; updated only with
    atomic SQL, after the account's counter of the same use (the lock order every path keeps)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="+")
    entity = models.CharField(max_length=255, verbose_name="entity ID (the tenant's)")
    period_start = models.DateTimeField(verbose_name="period from")
    period_end = models.DateTimeField(verbose_name="period until")
    used = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "feature", "entity", "period_start"], name="entity_counter_unique"
            ),
            models.CheckConstraint(condition=models.Q(used__gte=0), name="entity_counter_not_negative"),
        ]
        verbose_name = "entity counter"
        verbose_name_plural = "entity counters"

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.entity}:{self.feature_id}:{self.period_start:%Y-%m-%d}"


class EntityWindowCounter(models.Model):
    """Units one entity (by the tenant's id) used of a metered feature in the usage window of its own limits
    (`per_entity.windows`) starting at `window_start`, held units included (`held` says how many): the entity's
    `UsageWindowCounter`, moved to the next window by the statement that first counts in it."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="+")
    entity = models.CharField(max_length=255, verbose_name="entity ID (the tenant's)")
    span = models.CharField(max_length=8)  # minute, hour, day or week
    window_start = models.DateTimeField(verbose_name="window from")
    used = models.BigIntegerField(default=0)
    held = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(verbose_name="updated")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "feature", "entity", "span"], name="entity_window_unique"
            ),
            models.CheckConstraint(condition=models.Q(used__gte=0), name="entity_window_not_negative"),
            models.CheckConstraint(
                condition=models.Q(held__gte=0, held__lte=models.F("used")), name="entity_window_held_within"
            ),
        ]
        verbose_name = "entity window counter"
        verbose_name_plural = "entity window counters"

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.entity}:{self.feature_id}:{self.span}"
