"""The catalog: products and their prices, features, the values products give features, and how long a one-time
purchase of a product lasts."""

from django.db import models
from django.db.models import Q

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
    stripe_meter_id = models.CharField(max_length=100, blank=True, verbose_name="Stripe meter")
    stripe_meter_event_name = models.CharField(max_length=100, blank=True, verbose_name="Stripe meter event")
    # A metered feature's usage events may give their dimensions (model and tokens) instead of a quantity: the
    # formula (`catalog.formulas`) turns them into units, stored with each event. Null: events give `quantity`.
    usage_formula = models.JSONField(
        null=True,
        blank=True,
        verbose_name="units from dimensions",
        help_text='{"type": "cost", "markup": "1.5", "unit_micros": 1000} or {"type": "rates", "rates": '
        '{"input_tokens": "0.001"}, "models": {}}; empty: usage events give their quantity.',
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        db_table = "entitlements_feature"
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="feature_key_unique_per_project")
        ]
        ordering = ["key"]
        verbose_name = "feature"
        verbose_name_plural = "features"

    def __str__(self) -> str:
        return self.key


class Product(models.Model):
    id = PublicIdField(prefix="prd")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="products")
    key = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    # Listed by the unauthenticated pricing-page endpoint (`catalog.public`); off until the tenant opts in.
    public = models.BooleanField(default=False)
    # The plan's account cap (`catalog.rules.account_cap_parse`: {"amount", "currency", "at_cap"}) for its customers
    # without one of their own; null: none.
    account_cap = models.JSONField(
        null=True,
        blank=True,
        verbose_name="spend cap across its metered features",
        help_text='{"amount": 50000, "currency": "usd", "at_cap": "block"} (or "alert"): the most its customers\' metered '
        "prices bill together a period, for each customer without an account cap of their own. Empty: none.",
    )
    stripe_product_id = models.CharField(max_length=100, blank=True, verbose_name="Stripe product")
    # The latest published version (`ProductVersion`): what new subscribers get and the feature values below hold.
    version = models.PositiveIntegerField(default=1, db_default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        db_table = "billing_product"
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="product_key_unique_per_project")
        ]
        verbose_name = "product"
        verbose_name_plural = "products"

    def __str__(self) -> str:
        return self.key


class Price(models.Model):
    class Type(models.TextChoices):
        RECURRING = "recurring"
        ONE_TIME = "one_time"

    class Interval(models.TextChoices):
        DAY = "day"
        WEEK = "week"
        MONTH = "month"
        YEAR = "year"

    class UsageType(models.TextChoices):
        LICENSED = "licensed"
        METERED = "metered"

    class TaxBehavior(models.TextChoices):
        UNSPECIFIED = "unspecified"
        INCLUSIVE = "inclusive"
        EXCLUSIVE = "exclusive"

    class BillingScheme(models.TextChoices):
        PER_UNIT = "per_unit"
        TIERED = "tiered"

    class TiersMode(models.TextChoices):
        GRADUATED = "graduated"
        VOLUME = "volume"

    id = PublicIdField(prefix="prc")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="prices")
    key = models.SlugField(max_length=100)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="prices")
    currency = models.CharField(max_length=3)
    # Null exactly when the price is tiered: its amounts are in `tiers` (see billing/catalog/pricing.py).
    unit_amount = models.BigIntegerField(null=True, blank=True, verbose_name="unit price")
    billing_scheme = models.CharField(
        max_length=20,
        choices=BillingScheme.choices,
        default=BillingScheme.PER_UNIT,
        verbose_name="how it charges",
    )
    tiers_mode = models.CharField(
        max_length=20, choices=TiersMode.choices, blank=True, verbose_name="how tiers apply"
    )
    # [{"up_to": int | "inf", "unit_amount": int | None, "flat_amount": int | None}], ascending, last "inf".
    tiers = models.JSONField(default=list, blank=True)
    type = models.CharField(max_length=20, choices=Type.choices)
    interval = models.CharField(max_length=10, choices=Interval.choices, blank=True)
    interval_count = models.PositiveIntegerField(default=1, verbose_name="intervals per period")
    trial_days = models.PositiveIntegerField(null=True, blank=True, verbose_name="trial (days)")
    usage_type = models.CharField(
        max_length=20,
        choices=UsageType.choices,
        default=UsageType.LICENSED,
        verbose_name="licensed or metered",
    )
    meter = models.ForeignKey(Feature, null=True, blank=True, on_delete=models.PROTECT, related_name="prices")
    tax_behavior = models.CharField(
        max_length=20,
        choices=TaxBehavior.choices,
        default=TaxBehavior.UNSPECIFIED,
        verbose_name="tax on top or included",
    )
    active = models.BooleanField(default=True)
    # The current Stripe price. An amount or currency change creates a new one that takes over the lookup key;
    # subscriptions created earlier keep pointing at the old one (kept in `stripe_price_history`).
    stripe_price_id = models.CharField(max_length=100, blank=True, verbose_name="Stripe price")
    stripe_price_history = models.JSONField(default=list, blank=True, verbose_name="earlier Stripe prices")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        db_table = "billing_price"
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="price_key_unique_per_project"),
            models.CheckConstraint(condition=Q(unit_amount__gte=0), name="price_unit_amount_not_negative"),
            models.CheckConstraint(
                condition=(Q(billing_scheme="per_unit", unit_amount__isnull=False, tiers_mode=""))
                | Q(
                    billing_scheme="tiered", unit_amount__isnull=True, tiers_mode__in=["graduated", "volume"]
                ),
                name="price_amount_matches_billing_scheme",
            ),
        ]
        verbose_name = "price"
        verbose_name_plural = "prices"

    def __str__(self) -> str:
        return self.key

    @property
    def is_recurring(self) -> bool:
        return self.type == self.Type.RECURRING


class ProductFeature(models.Model):
    """The value a product gives a feature: `true`, a limit (`null` = unlimited), an amount, or a JSON value.

    `per_unit` values are multiplied by the quantity bought or subscribed (5 seats per licence × 3 = 15).
    `overage` (metered limits only): use may go past the limit; the feature's metered price, if any, bills it.
    `rollover` (credits only): at most this many of a paid period's unspent credits carry into the next period.
    `cadence` (credits only): the value is granted every calendar month or week of a paid period, not once for it.
    `windows` (metered only): limits per calendar window (UTC) beside the period's, `{"minute": 100, "day": 5000}`.
    `cap` (metered with overage only): a spend cap on the use past the limit (`rules.SpendCap`).
    `credits` (metered only): the credits waterfall, `{"feature": key, "cost": n}`: use past the limit is paid
    from that credits feature's balance, n credits a unit, before any overage.
    `per_entity` (metered): each of the customer's entities of an allocation feature (a seat, a workspace) has its
    own limit a period beside the account's, `{"feature": "seats", "limit": 50}`; (credits) each may hold credits
    of its own, returned to the account or forfeited when it is removed, `{"feature": "seats", "on_remove":
    "return"}`, and be given `credits` of them with each grant of the plan's (`"credits": 50`).
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="feature_values")
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="product_values")
    value = models.JSONField(null=True, blank=True)
    per_unit = models.BooleanField(default=False, verbose_name="per unit bought")
    overage = models.BooleanField(default=False, db_default=False, verbose_name="overage allowed")
    rollover = models.PositiveBigIntegerField(null=True, blank=True, verbose_name="rollover cap")
    cadence = models.CharField(
        max_length=10,
        blank=True,
        default="",
        db_default="",
        choices=[("month", "every month"), ("week", "every week")],
        verbose_name="credits granted",
        help_text="Credits: granted every month or week of a paid period; empty: once per paid period.",
    )
    windows = models.JSONField(null=True, blank=True, verbose_name="usage windows")
    # metered with overage: how far use may go past the limit, {"units": n} or {"amount": m} (minor units the
    # metered price bills for the period), and what happens there: {"at_cap": "block" | "alert"}
    cap = models.JSONField(null=True, blank=True, verbose_name="spend cap")
    credits = models.JSONField(
        null=True,
        blank=True,
        verbose_name="then credits",
        help_text="Metered: the credits feature that pays for use past the limit, before any overage: "
        '{"feature": "ai_credits", "cost": 2} (credits a unit; cost defaults to 1).',
    )
    per_entity = models.JSONField(
        null=True,
        blank=True,
        verbose_name="limit per seat or workspace",
        help_text="Metered: each entity of an allocation feature (a seat, a workspace) has its own limit a "
        'period beside the account\'s: {"feature": "seats", "limit": 50}. Credits: each may hold credits of its '
        "own, returned to the account or forfeited when it is removed, and (optional) be given some with each "
        'grant of the plan\'s: {"feature": "seats", "on_remove": "return", "credits": 50}.',
    )

    class Meta:
        db_table = "entitlements_productfeature"
        constraints = [models.UniqueConstraint(fields=["product", "feature"], name="product_feature_unique")]
        verbose_name = "product feature value"
        verbose_name_plural = "product feature values"

    def __str__(self) -> str:
        return f"{self.product_id}:{self.feature_id}"


class ProductAccess(models.Model):
    """How long a one-time purchase of a product lasts. Without a row (or with no duration) it is lifetime."""

    product = models.OneToOneField(Product, on_delete=models.CASCADE, primary_key=True, related_name="access")
    duration_days = models.PositiveIntegerField(
        null=True, blank=True, verbose_name="access (days; empty: for life)"
    )

    class Meta:
        db_table = "entitlements_productaccess"
        verbose_name = "product access duration"
        verbose_name_plural = "product access durations"

    def __str__(self) -> str:
        return f"{self.product_id}: {self.duration_days or 'lifetime'}"


class ProductVersion(models.Model):
    """One published version of a product, frozen when it was published: the feature values it gives (`features`
    as the API shows them; `values` as the resolver reads them, by feature id: [value, per_unit, overage, windows,
    cap, credits, per_entity, rollover, cadence]), its account cap and the prices it was sold at. A subscription
    item is on the version in force when Stripe created it (`catalog.versions.versions_at`) and keeps it; the
    product's own `ProductFeature` rows and `account_cap` are always its latest version. Never changed once
    written."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    features = models.JSONField(default=dict)
    values = models.JSONField(default=dict)
    prices = models.JSONField(default=list)
    # The account cap it gives its subscribers (`Product.account_cap` when it was published); null: none.
    account_cap = models.JSONField(
        null=True, blank=True, verbose_name="spend cap across its metered features"
    )
    published_at = models.DateTimeField(verbose_name="published")
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "number"], name="product_version_unique"),
        ]
        ordering = ["product", "number"]
        verbose_name = "product version"
        verbose_name_plural = "product versions"

    def __str__(self) -> str:
        return f"{self.product_id} v{self.number}"


class ProductDraft(models.Model):
    """The next version of a product being edited: its feature values (as `PATCH /products` takes them), its
    account cap and new terms for its prices, drafted on top of version `based_on`. Publishing it makes it the product's latest version; it is refused when another
    version was published since (`catalog.services.versions`)."""

    product = models.OneToOneField(Product, on_delete=models.CASCADE, primary_key=True, related_name="draft")
    features = models.JSONField(default=dict)
    # New terms for some of the product's prices, by price key: {"unit_amount": n} or {"tiers": [...]}
    # (`catalog.services.drafts.draft_prices_normalized`); publishing reprices them (subscribers keep theirs).
    prices = models.JSONField(default=dict, blank=True, db_default={})
    # The account cap the next version gives (`account_cap_parse`'s shape); null: none.
    account_cap = models.JSONField(
        null=True, blank=True, verbose_name="spend cap across its metered features"
    )
    based_on = models.PositiveIntegerField()
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        verbose_name = "product draft"
        verbose_name_plural = "product drafts"

    def __str__(self) -> str:
        return f"{self.product_id} draft on v{self.based_on}"
