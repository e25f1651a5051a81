"""Coupons and promotion codes, mirrored from Stripe."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from core.ids import PublicIdField


class Coupon(models.Model):
    """A discount a project offers (API.md "Discounts and tax"), mirrored by a Stripe coupon of the same id.
    Only its name could change at Stripe, so the terms here are fixed once created; a deleted coupon keeps its
    row (promotion codes and discounts refer to it) but is gone from the API."""

    class Duration(models.TextChoices):
        ONCE = "once"
        REPEATING = "repeating"
        FOREVER = "forever"

    id = PublicIdField(prefix="cpn")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="coupons")
    key = models.CharField(max_length=100)
    name = models.CharField(max_length=40, blank=True)
    # Exactly one of: a percentage (0 < p ≤ 100, two decimals, as Stripe takes it) or an amount in `currency`.
    percent_off = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    amount_off = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    duration = models.CharField(max_length=20, choices=Duration.choices)
    duration_in_months = models.PositiveIntegerField(null=True, blank=True)
    max_redemptions = models.PositiveIntegerField(null=True, blank=True)
    redeem_by = models.DateTimeField(null=True, blank=True)
    # Ids of the project's products the coupon is limited to ([] = every product).
    applies_to = models.JSONField(default=list, blank=True)
    stripe_coupon_id = models.CharField(max_length=100, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "key"],
                condition=Q(deleted_at__isnull=True),
                name="coupon_key_unique_per_project",
            ),
            models.CheckConstraint(
                condition=(Q(percent_off__isnull=False, amount_off__isnull=True, currency=""))
                | (Q(percent_off__isnull=True, amount_off__gt=0) & ~Q(currency="")),
                name="coupon_percent_or_amount",
            ),
        ]
        verbose_name = "coupon"
        verbose_name_plural = "coupons"

    def __str__(self) -> str:
        return self.key


class PromotionCode(models.Model):
    """A code customers type (or a tenant passes as `promotion_code`) for one coupon, mirrored by a Stripe
    promotion code. Codes are unique per project whatever their case, as Stripe compares them."""

    id = PublicIdField(prefix="pcode")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="promotion_codes")
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="promotion_codes")
    code = models.CharField(max_length=100)
    max_redemptions = models.PositiveIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    first_time_transaction = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    stripe_promotion_code_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("code"), "project", name="promotion_code_unique_per_project_any_case"
            )
        ]
        verbose_name = "promotion code"
        verbose_name_plural = "promotion codes"

    def __str__(self) -> str:
        return self.code
