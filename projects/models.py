"""Tenants: projects and the keys that reach the API (project keys and operators' platform keys)."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.crypto import EncryptedTextField
from core.ids import PublicIdField

MAX_PAYMENT_TTL_SECONDS = 86_400  # Stripe Checkout sessions live at most 24 hours.
# A margin alert's threshold, in basis points of what was billed: from a loss of 100 times what was billed (−1,000,000)
# to a margin of all of it (10,000: any cost at all).
MIN_MARGIN_ALERT_BPS = -1_000_000
MAX_MARGIN_ALERT_BPS = 10_000


class Project(models.Model):
    """A tenant: one product of a company, with its own keys, catalog, customers and (optionally) Stripe account."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"

    class Flow(models.TextChoices):
        CHECKOUT = "checkout"
        INTENT = "intent"

    class ProrationRule(models.TextChoices):
        """When a subscription change of one direction takes effect, and how it is charged."""

        NOW_PRORATE = "now_prorate", "now, with prorations"
        NOW_NO_PRORATION = "now_no_proration", "now, without prorations"
        PERIOD_END = "period_end", "at the end of the current period"

    id = PublicIdField(prefix="proj")
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    default_currency = models.CharField(max_length=3, default="usd", verbose_name="currency by default")
    allowed_redirect_hosts = models.JSONField(
        default=list, blank=True, verbose_name="hosts allowed in redirect URLs"
    )
    payment_ttl_seconds = models.PositiveIntegerField(
        default=MAX_PAYMENT_TTL_SECONDS,
        validators=[MinValueValidator(60), MaxValueValidator(MAX_PAYMENT_TTL_SECONDS)],
        verbose_name="open payments expire after (seconds)",
    )
    default_flow = models.CharField(
        max_length=20, choices=Flow.choices, default=Flow.CHECKOUT, verbose_name="payment flow by default"
    )
    # The catalog key of the product everyone gets without a purchase (the Free tier); resolved by the catalog.
    default_product = models.CharField(
        max_length=100, blank=True, verbose_name="product everyone has (catalog key)"
    )
    # Own Stripe account (optional; else the platform's). Secrets are encrypted at rest and never echoed.
    stripe_secret_key = EncryptedTextField(blank=True, default="")
    stripe_publishable_key = models.CharField(
        max_length=255, blank=True, default="", verbose_name="publishable key for Stripe.js"
    )
    stripe_webhook_secret = EncryptedTextField(blank=True, default="")
    # A payment that Stripe reports as paid after we expired it is refunded automatically when this is on.
    refund_late_payments = models.BooleanField(
        default=False, verbose_name="refund payments that succeed after they expired"
    )
    # A subscription whose first invoice is voided unpaid is canceled at once when this is on (its access ends
    # with it); off, it runs on as Stripe leaves it (billing.services.first_invoice_voids).
    first_invoice_void_ends_subscription = models.BooleanField(
        default=False,
        verbose_name="a voided first invoice ends its subscription",
        help_text="Cancel a subscription at once when its first invoice is voided before anything was paid on "
        "it: what it granted ends with it. Off: the subscription runs on, as Stripe leaves it.",
    )
    # The project's billing portal configuration at Stripe (offers only this project's prices).
    stripe_portal_configuration_id = models.CharField(
        max_length=100, blank=True, verbose_name="Stripe portal configuration"
    )
    # Proration rules (billing.services.subscription_rules): what a subscription change does, per direction.
    proration_upgrade = models.CharField(
        max_length=20,
        choices=ProrationRule.choices,
        default=ProrationRule.NOW_PRORATE,
        verbose_name="upgrades take effect",
    )
    proration_downgrade = models.CharField(
        max_length=20,
        choices=ProrationRule.choices,
        default=ProrationRule.NOW_PRORATE,
        verbose_name="downgrades take effect",
    )
    proration_interval_change = models.CharField(
        max_length=20,
        choices=ProrationRule.choices,
        default=ProrationRule.NOW_PRORATE,
        verbose_name="billing interval changes take effect",
    )
    # `customer.margin_low` fires once a month (and currency) for a customer whose margin this month is below this
    # many basis points of what they were billed (billing.services.margin_alerts); null: never.
    margin_alert_below_bps = models.IntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(MIN_MARGIN_ALERT_BPS), MaxValueValidator(MAX_MARGIN_ALERT_BPS)],
        verbose_name="margin alert below (basis points)",
        help_text="Announce a customer's month as customer.margin_low when their margin falls below this share "
        "of what they were billed, in basis points (2000 = 20 %; negative: a loss). Empty: never.",
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        permissions = [
            ("manage_project_keys", "Can rotate and revoke project API keys"),
            ("suspend_project", "Can suspend and reactivate projects"),
        ]
        ordering = ["slug"]
        verbose_name = "project"
        verbose_name_plural = "projects"

    def __str__(self) -> str:
        return self.slug

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class BaseKey(models.Model):
    """A bearer secret, stored only as its SHA-256; `prefix` is the part shown to people."""

    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=20, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    last_used_at = models.DateTimeField(null=True, blank=True, verbose_name="last used")
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name="revoked")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.prefix}…"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class ApiKey(BaseKey):
    """A project's secret API key: reaches the tenant endpoints of that project only."""

    id = PublicIdField(prefix="key")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "project API key"
        verbose_name_plural = "project API keys"


class PlatformKey(BaseKey):
    """An operators' automation key: reaches `/api/v1/projects*` only."""

    id = PublicIdField(prefix="pkey")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "platform key"
        verbose_name_plural = "platform keys"
