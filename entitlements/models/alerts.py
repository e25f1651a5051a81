"""What a tenant asks to be told or done about a customer's usage and balance: its own thresholds
(`UsageThreshold`, announced once per period: `ThresholdCrossing`) and the automatic recharge of a credits balance
(`AutoRecharge`)."""

from django.db import models

from core.ids import PublicIdField


class UsageThreshold(models.Model):
    """A tenant's own usage threshold on a customer's metered feature: a percent of the limit or a number of
    units used; announced as `usage.threshold_reached` once per period (`ThresholdCrossing`), like 80 % and 100 %."""

    class Kind(models.TextChoices):
        PERCENT = "percent", "percent of the limit"
        QUANTITY = "quantity", "units used"

    id = PublicIdField(prefix="uthr")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="usage_thresholds"
    )
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    value = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "feature", "kind", "value"], name="usage_threshold_unique"
            ),
            models.CheckConstraint(condition=models.Q(value__gt=0), name="usage_threshold_positive"),
        ]
        verbose_name = "usage threshold"
        verbose_name_plural = "usage thresholds"

    def __str__(self) -> str:
        return self.id


class ThresholdCrossing(models.Model):
    """A usage threshold announced for a customer's metered feature in one period (`usage.threshold_reached`):
    the unique constraint lets each one through once, though holds ending and releases can take usage back
    below it and over it again."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="+")
    period_start = models.DateTimeField(verbose_name="period from")
    threshold = models.CharField(max_length=40)  # "0.8", "1.0", or a tenant's threshold's id
    created_at = models.DateTimeField(verbose_name="announced")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "feature", "period_start", "threshold"], name="threshold_crossed_once"
            )
        ]
        verbose_name = "usage threshold crossed"
        verbose_name_plural = "usage thresholds crossed"

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.feature_id}:{self.threshold}"


class AutoRecharge(models.Model):
    """A customer's credits balance topped up on its own: when a spend or a hold leaves the balance at or below
    `below`, `quantity` of a one-time `price` (whose product grants the feature's credits) is charged to the
    customer's saved card, off session, and its credits are granted once the payment succeeded — as any
    purchase's are. One charge at a time: `armed` → `charging` (a conditional update in the spend's
    transaction, `attempt` + 1) → `armed` again when the payment succeeded, or `failed` (the tenant re-arms by
    configuring it again). `payment_id` names billing's payment of the current attempt."""

    class Status(models.TextChoices):
        ARMED = "armed"
        CHARGING = "charging"
        FAILED = "failed"

    id = PublicIdField(prefix="arc")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="auto_recharges"
    )
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="+")
    below = models.BigIntegerField(verbose_name="recharge at or below")
    price = models.ForeignKey("catalog.Price", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(default=1)
    payment_method = models.CharField(
        max_length=255, blank=True, help_text="A Stripe PaymentMethod; blank: the customer's default card."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ARMED)
    attempt = models.PositiveIntegerField(default=0)  # charges started; the current one's number
    payment_id = models.CharField(max_length=40, blank=True, verbose_name="payment")
    charging_since = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    recharged_at = models.DateTimeField(null=True, blank=True, verbose_name="last recharged")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "feature"], name="auto_recharge_one_per_feature"),
            models.CheckConstraint(condition=models.Q(below__gte=0), name="auto_recharge_below_positive"),
        ]
        indexes = [models.Index(fields=["status", "charging_since"])]
        verbose_name = "auto-recharge"
        verbose_name_plural = "auto-recharges"

    def __str__(self) -> str:
        return self.id


class SpendCap(models.Model):
    """A customer's own spend cap on a metered feature's overage, in place of their plan's (`catalog.rules.
    spend_cap_parse`: `cap` is `{"units": n | "amount": m, "at_cap": "block" | "alert"}`); without a feature, the
    customer's account cap across their metered features (`catalog.rules.account_cap_parse`: `{"amount": m,
    "currency": c, "at_cap": …}`, `entitlements.account_cap`), whose row every use it judges locks. Changed only
    through `services.spend_caps` (audited)."""

    id = PublicIdField(prefix="scap")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="spend_caps")
    feature = models.ForeignKey(
        "catalog.Feature", on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    cap = models.JSONField(verbose_name="spend cap")
    # An account cap: the start of the period whose use last reached it (`usage.cap_reached` once a period).
    reached_period = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "feature"], name="spend_cap_unique"),
            models.UniqueConstraint(
                fields=["customer"], condition=models.Q(feature__isnull=True), name="spend_cap_account_unique"
            ),
        ]
        verbose_name = "spend cap"
        verbose_name_plural = "spend caps"

    def __str__(self) -> str:
        return self.id
