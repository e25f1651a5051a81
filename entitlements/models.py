"""Features and the values products give them. Grants, revocations, usage and credit ledgers come with #6."""

from django.db import models

from core.ids import PublicIdField


class Feature(models.Model):
    """Something a customer may be entitled to: a flag, an allowance, a balance, an allocation or a value."""

    class Type(models.TextChoices):
        BOOLEAN = "boolean"
        METERED = "metered"  # an allowance per billing period that resets
        CREDITS = "credits"  # a prepaid balance that does not reset
        ALLOCATION = "allocation"  # a count in use that goes up and down (seats)
        STATIC = "static"  # a configuration value

    id = PublicIdField(prefix="feat")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="features")
    key = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=20, choices=Type.choices)
    unit = models.CharField(max_length=50, blank=True)
    # Metered features are billed through a Stripe meter; event names are unique per Stripe account, so
    # they are namespaced by project (`tg_<project slug>_<feature key>`).
    stripe_meter_id = models.CharField(max_length=100, blank=True)
    stripe_meter_event_name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="feature_key_unique_per_project")
        ]
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class ProductFeature(models.Model):
    """The value a product gives a feature: `true`, a limit (`null` = unlimited), an amount, or a JSON value.

    `per_unit` values are multiplied by the quantity bought or subscribed (5 seats per licence × 3 = 15).
    """

    product = models.ForeignKey("billing.Product", on_delete=models.CASCADE, related_name="feature_values")
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="product_values")
    value = models.JSONField(null=True, blank=True)
    per_unit = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["product", "feature"], name="product_feature_unique")]

    def __str__(self) -> str:
        return f"{self.product_id}:{self.feature_id}"
