"""Grants, revocations, purchases, paid plan periods, usage counters, credit lots and holds."""

from django.db import models

from core.ids import PublicIdField

DEFAULT_CREDIT_PRIORITY = 10


class EntitlementSettings(models.Model):
    """A project's entitlement settings (one row per project, created on first need with the defaults)."""

    project = models.OneToOneField(
        "projects.Project", on_delete=models.CASCADE, primary_key=True, related_name="entitlement_settings"
    )
    # A `past_due` subscription keeps giving access for this long after its current period started
    # (when the renewal payment failed), then stops.
    past_due_grace_seconds = models.PositiveIntegerField(
        default=3 * 86_400, verbose_name="past-due grace (seconds)"
    )
    # Usage events may arrive this long after the end of the period they belong to.
    usage_grace_seconds = models.PositiveIntegerField(
        default=3_600, verbose_name="late usage accepted for (seconds)"
    )
    # `credits.low` fires when a consume takes a balance to or below this share of the credits still valid.
    credits_low_percent = models.PositiveSmallIntegerField(default=20, verbose_name="credits low at (%)")

    class Meta:
        verbose_name = "entitlement settings"
        verbose_name_plural = "entitlement settings"

    def __str__(self) -> str:
        return f"entitlement settings of {self.project_id}"


class Grant(models.Model):
    """An operator's manual grant. On metered/credits/allocation it tops up; on boolean/static it sets the value."""

    id = PublicIdField(prefix="grant")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="grants")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="grants")
    value = models.JSONField(null=True, blank=True)
    # credits: the drawdown priority of the credits it grants (lower first; `CreditLot.priority`)
    priority = models.PositiveSmallIntegerField(null=True, blank=True)
    # credits: the customer's entity (the tenant's id) the credits are that entity's own; "" for the account's
    entity = models.CharField(
        max_length=255, blank=True, default="", db_default="", verbose_name="entity ID (the tenant's)"
    )
    expires_at = models.DateTimeField(null=True, blank=True, verbose_name="expires")
    reason = models.CharField(max_length=500)
    deleted_at = models.DateTimeField(null=True, blank=True, verbose_name="ended")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")

    class Meta:
        indexes = [models.Index(fields=["customer", "feature"])]
        # The operators' entitlement permissions (the `support` role has both): granting gives access (a grant,
        # lifting a revocation); revoking takes it away (a revocation, ending a grant or a purchase).
        permissions = [
            ("grant_entitlement", "Can grant entitlements and lift revocations"),
            ("revoke_entitlement", "Can revoke entitlements and end grants or purchases"),
        ]
        verbose_name = "grant"
        verbose_name_plural = "grants"

    def __str__(self) -> str:
        return self.id


class Revocation(models.Model):
    """Takes a feature away from a customer whatever their purchases say, until it expires or is deleted."""

    id = PublicIdField(prefix="revk")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="revocations")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="revocations")
    expires_at = models.DateTimeField(null=True, blank=True, verbose_name="expires")
    reason = models.CharField(max_length=500)
    deleted_at = models.DateTimeField(null=True, blank=True, verbose_name="lifted")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")

    class Meta:
        indexes = [models.Index(fields=["customer", "feature"])]
        verbose_name = "revocation"
        verbose_name_plural = "revocations"

    def __str__(self) -> str:
        return self.id


class SubscriptionState(models.Model):
    """What a subscription holds and its state, as billing hands it: the primary item's product and quantity,
    every item, and the raw facts the resolver's rules read (status, period, trial, cancellation). The current
    state is a `SubscriptionSource`; each state Tollgate was told of is a `SubscriptionVersion` (`history`)."""

    class Status(models.TextChoices):
        # Stripe's subscription statuses, as billing mirrors them.
        INCOMPLETE = "incomplete"
        INCOMPLETE_EXPIRED = "incomplete_expired"
        TRIALING = "trialing"
        ACTIVE = "active"
        PAST_DUE = "past_due"
        UNPAID = "unpaid"
        PAUSED = "paused"
        CANCELED = "canceled"

    # Statuses in which a customer "has" the subscription (billing's `Subscription.LIVE_STATUSES`).
    LIVE_STATUSES = (
        Status.INCOMPLETE,
        Status.TRIALING,
        Status.ACTIVE,
        Status.PAST_DUE,
        Status.UNPAID,
        Status.PAUSED,
    )

    # The primary item's product and quantity (the subscription's own), and every item in Stripe's order:
    # [{"product", "price", "metered", "quantity", "version"}] (no "version": mirrored before versions, version 1).
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(default=1)
    items = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=30, choices=Status.choices)
    current_period_start = models.DateTimeField(null=True, blank=True, verbose_name="period started")
    current_period_end = models.DateTimeField(null=True, blank=True, verbose_name="period ends")
    interval = models.CharField(max_length=10, default="month")
    interval_count = models.PositiveIntegerField(default=1)
    cancel_at_period_end = models.BooleanField(default=False, verbose_name="cancels at period end")
    trial_end = models.DateTimeField(null=True, blank=True, verbose_name="trial ends")
    canceled_at = models.DateTimeField(null=True, blank=True, verbose_name="canceled")
    # The subscription's own creation and last change: the newest subscription wins where one must, and a
    # past-due subscription without a period counts its grace from its last change.
    created_at = models.DateTimeField(verbose_name="created")
    updated_at = models.DateTimeField(verbose_name="updated")

    class Meta:
        abstract = True


class SubscriptionSource(SubscriptionState):
    """A subscription as billing hands it now (`entitlements.services.sources.subscription_source_put`, in the
    mirror's transaction). Its id is the subscription's id, a value: no foreign key points into billing."""

    id = models.CharField(primary_key=True, max_length=40, verbose_name="subscription")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="subscription_sources"
    )

    class Meta:
        indexes = [models.Index(fields=["customer", "status"], name="subscription_source_customer")]
        verbose_name = "subscription source"
        verbose_name_plural = "subscription sources"

    def __str__(self) -> str:
        return self.id


class SubscriptionVersion(SubscriptionState):
    """One state of a subscription as Tollgate was told of it, from `recorded_at` until the next version: what a
    point-in-time check (`entitlements.history`) reads. Appended by every `subscription_source_put`."""

    subscription_id = models.CharField(max_length=40, verbose_name="subscription")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    recorded_at = models.DateTimeField(verbose_name="recorded")

    class Meta:
        indexes = [models.Index(fields=["customer", "recorded_at"], name="subscription_version_customer")]
        verbose_name = "subscription version"
        verbose_name_plural = "subscription versions"

    def __str__(self) -> str:
        return f"{self.subscription_id}@{self.recorded_at.isoformat()}"


class Purchase(models.Model):
    """One one-time line of a succeeded payment: the product's features for life or for a duration. The payment
    is billing's: its id and status are values billing hands (`payment_entitlements_apply`)."""

    id = PublicIdField(prefix="purch")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="purchases")
    payment_id = models.CharField(max_length=40, db_index=True, verbose_name="payment")
    # The payment's status and dispute outcome as billing last handed them: an open dispute flags the purchase.
    payment_status = models.CharField(max_length=30, blank=True)
    dispute_status = models.CharField(max_length=30, blank=True, verbose_name="dispute")
    line = models.PositiveIntegerField()  # index of the item in the payment's `items`
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    price = models.ForeignKey(
        "catalog.Price", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    quantity = models.PositiveIntegerField(default=1)
    starts_at = models.DateTimeField(verbose_name="starts")
    ends_at = models.DateTimeField(null=True, blank=True, verbose_name="ends")  # null: lifetime
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name="revoked")
    revoke_reason = models.CharField(max_length=500, blank=True, verbose_name="why revoked")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")

    class Meta:
        constraints = [
            # The fulfilment key: a payment's line is recorded once, however often its success is reported.
            models.UniqueConstraint(fields=["payment_id", "line"], name="purchase_fulfilment_unique")
        ]
        indexes = [models.Index(fields=["customer", "revoked_at"])]
        verbose_name = "purchase"
        verbose_name_plural = "purchases"

    def __str__(self) -> str:
        return self.id

    @property
    def disputed(self) -> bool:
        return payment_disputed(payment_status=self.payment_status, dispute_status=self.dispute_status)


def payment_disputed(*, payment_status: str, dispute_status: str) -> bool:
    """Whether a purchase's payment is or was disputed: access is kept while the dispute is open, flagged; a lost
    one ends it."""
    return payment_status == "disputed" or bool(dispute_status)


class UsageEvent(models.Model):
    """A usage event, consume or release, idempotent by the tenant's `event_id` within the project (`UsageEventKey`)."""

    class Kind(models.TextChoices):
        USAGE = "usage"
        CONSUME = "consume"
        RELEASE = "release"

    class MeterStatus(models.TextChoices):
        NONE = "", "not billed by a Stripe meter"
        PENDING = "pending"
        REPORTED = "reported"
        SKIPPED = "skipped"  # no Stripe customer to bill
        FAILED = "failed"  # gave up after the last attempt

    # The busiest table: it carries only the indexes its queries use (the composite (customer, feature,
    # -timestamp), feature for cascades, and the pending meter reports). Django's default single-column and
    # `varchar_pattern_ops` indexes on the ids would double the cost of an insert. On PostgreSQL it is split into
    # monthly partitions on `timestamp` (migration 0017, `services.usage_partitions`; its primary key there is
    # (id, timestamp)), and the tenant's id is unique per project through `UsageEventKey`, not an index here.
    id = PublicIdField(prefix="uev")
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="usage_events", db_index=False
    )
    feature = models.ForeignKey(
        "catalog.Feature", on_delete=models.CASCADE, related_name="usage_events", db_index=False
    )
    event_id = models.CharField(max_length=255, verbose_name="event ID (the tenant's)")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.USAGE)
    quantity = models.BigIntegerField()
    timestamp = models.DateTimeField()
    period_start = models.DateTimeField(
        null=True, blank=True, verbose_name="counted in the period from"
    )  # the metered period it was counted in
    properties = models.JSONField(default=dict, blank=True)
    meter_status = models.CharField(
        max_length=10, choices=MeterStatus.choices, default="", blank=True, verbose_name="Stripe meter"
    )
    meter_attempts = models.PositiveSmallIntegerField(default=0, verbose_name="reports tried")
    meter_next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name="next report attempt")
    meter_reported_at = models.DateTimeField(null=True, blank=True, verbose_name="reported to Stripe")
    meter_error = models.CharField(max_length=500, blank=True, verbose_name="Stripe meter error")
    # A consume's units paid from credits (a credits waterfall): counted as used, never billed by a meter.
    covered = models.BigIntegerField(default=0, db_default=0, verbose_name="paid with credits")
    # An event that gave its dimensions (`catalog.formulas`): {"model", "values"} and, where a cost table priced
    # the call, {"cost_table", "currency"}; `quantity` is what the feature's formula then made of them.
    dimensions = models.JSONField(null=True, blank=True)
    cost_micros = models.BigIntegerField(null=True, blank=True, verbose_name="cost (micro-units)")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="received")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gte=0), name="usage_quantity_not_negative"),
        ]
        indexes = [
            models.Index(
                fields=["meter_next_attempt_at"],
                name="usage_meter_pending",
                condition=models.Q(meter_status="pending"),
            ),
            models.Index(fields=["customer", "feature", "-timestamp"]),
            models.Index(fields=["feature"], name="usage_event_feature"),
        ]
        verbose_name = "usage event"
        verbose_name_plural = "usage events"

    def __str__(self) -> str:
        return self.event_id


class UsageCounter(models.Model):
    """How much of a metered feature a customer used in one period; updated only with atomic SQL."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="+")
    period_start = models.DateTimeField(verbose_name="period from")
    period_end = models.DateTimeField(verbose_name="period until")
    # `used` counts held units too (every limit check sees them); `held` says how many of them are held.
    used = models.BigIntegerField(default=0)
    held = models.BigIntegerField(default=0, db_default=0)
    # Of `used`, the units paid from credits (a credits waterfall): past the limit, and not overage.
    covered = models.BigIntegerField(default=0, db_default=0, verbose_name="paid with credits")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "feature", "period_start"], name="usage_counter_unique"
            ),
            models.CheckConstraint(condition=models.Q(used__gte=0), name="usage_counter_not_negative"),
            models.CheckConstraint(
                condition=models.Q(held__gte=0, held__lte=models.F("used")), name="usage_counter_held_within"
            ),
        ]
        verbose_name = "usage counter"
        verbose_name_plural = "usage counters"

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.feature_id}:{self.period_start:%Y-%m-%d}"


class AllocationCounter(models.Model):
    """How many units of an allocation feature (seats) a customer holds now; never resets."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="+")
    # `in_use` counts held units too; `held` says how many of them are held.
    in_use = models.BigIntegerField(default=0, verbose_name="units in use")
    held = models.BigIntegerField(default=0, db_default=0)
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "feature"], name="allocation_counter_unique"),
            models.CheckConstraint(condition=models.Q(in_use__gte=0), name="allocation_not_negative"),
            models.CheckConstraint(
                condition=models.Q(held__gte=0, held__lte=models.F("in_use")), name="allocation_held_within"
            ),
        ]
        verbose_name = "allocation counter"
        verbose_name_plural = "allocation counters"

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.feature_id}"


class PlanPeriod(models.Model):
    """A subscription period paid by one invoice: the fulfilment record of the plan's credits.

    One row per paid `subscription_create`, `subscription_cycle` or `subscription_update` invoice (billing hands
    what it billed: `plan_period_record`; a change's invoice billing prorations only names no product and grants
    nothing), keyed by the invoice's payment, whether
    or not the product carries credits: the invoice is settled once however often (and in whatever order) its
    payment is reported, and the recompute hook's catch-up never looks at it again. Its lots (source `plan`)
    expire at `period_end`; a full refund or a lost dispute of the payment takes them back (`revoked_at`).
    """

    id = PublicIdField(prefix="plper")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="plan_periods")
    # The invoice's payment and the invoice: billing's, named by value.
    payment_id = models.CharField(max_length=40, unique=True, verbose_name="payment")
    invoice_id = models.CharField(max_length=40, db_index=True, verbose_name="invoice")
    invoice_number = models.CharField(max_length=100, blank=True)
    # The invoice's subscription, by the Stripe id billing names it by (known with the invoice, even before the
    # subscription is mirrored): its end stops the period's credits still to come.
    subscription_id = models.CharField(max_length=255, blank=True, default="", verbose_name="subscription")
    # The plan the invoice billed (its licensed subscription line); null when no line names a catalog price.
    product = models.ForeignKey(
        "catalog.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    quantity = models.PositiveIntegerField(default=1)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "plan period"
        verbose_name_plural = "plan periods"

    def __str__(self) -> str:
        return self.id


class CreditLot(models.Model):
    """Credits granted at once (a purchase, a paid plan period or a grant), spent by priority (lowest first),
    then oldest-expiring first; `remaining` never < 0. A lot is the account's (`entity` "") or one entity's own
    (a grant naming it): only a use naming that entity spends it, before the account's. Removing the entity
    returns the lot to the account (`returned_at`) or forfeits what it has left (voided), as the plan declares."""

    class Source(models.TextChoices):
        PURCHASE = "purchase"
        PLAN = "plan"  # a subscription's paid period (`plan_period`), expiring at its end (or its slice's)
        GRANT = "grant"

    id = PublicIdField(prefix="lot")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="credit_lots")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=20, choices=Source.choices)
    purchase = models.ForeignKey(
        Purchase, null=True, blank=True, on_delete=models.CASCADE, related_name="lots"
    )
    grant = models.ForeignKey(Grant, null=True, blank=True, on_delete=models.CASCADE, related_name="lots")
    plan_period = models.ForeignKey(
        PlanPeriod,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="lots",
        verbose_name="paid plan period",
    )
    amount = models.BigIntegerField()
    remaining = models.BigIntegerField()
    # "" the account's; else the entity (the tenant's id) whose own credits these are, until `returned_at`
    entity = models.CharField(
        max_length=255, blank=True, default="", db_default="", verbose_name="entity ID (the tenant's)"
    )
    # When removing the entity returned the lot to the account (the plan's `on_remove: "return"`): the account's
    # from then on, what it has left and what holds give back to it.
    returned_at = models.DateTimeField(null=True, blank=True, verbose_name="returned to the account")
    # an entity's lot of plan credits: the grant (a slice of a paid period) that gave it (`PlanCreditSlice`)
    plan_slice = models.ForeignKey(
        "entitlements.PlanCreditSlice",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="entity_lots",
        verbose_name="plan grant",
    )
    # Spent lowest first (then the lot expiring first): a grant may name it, every other lot has the default.
    priority = models.PositiveSmallIntegerField(
        default=DEFAULT_CREDIT_PRIORITY, db_default=DEFAULT_CREDIT_PRIORITY
    )
    expires_at = models.DateTimeField(null=True, blank=True, verbose_name="expires")
    voided_at = models.DateTimeField(
        null=True, blank=True, verbose_name="taken back"
    )  # taken back (refund, lost dispute, grant deleted, its entity removed where the plan forfeits)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(remaining__gte=0, remaining__lte=models.F("amount")),
                name="credit_lot_remaining_within_amount",
            ),
            # The fulfilment key of plan credits: one lot per feature per paid period, or per slice of it where
            # the product grants the feature on a cadence (`PlanCreditSlice`: each slice's lot expires at its
            # own end) — the account's, and each entity's where the plan gives every entity credits.
            models.UniqueConstraint(
                fields=["plan_period", "feature", "expires_at", "entity"],
                condition=models.Q(plan_period__isnull=False),
                name="credit_lot_plan_period_slice_entity_unique",
            ),
        ]
        indexes = [models.Index(fields=["customer", "feature", "voided_at"])]
        verbose_name = "credit lot"
        verbose_name_plural = "credit lots"

    def __str__(self) -> str:
        return self.id

    @property
    def owner(self) -> str:
        """Who holds the lot now, as `owned_by` selects it: "" the account, else the entity."""
        return "" if self.returned_at is not None else self.entity

    @staticmethod
    def owned_by(owner: str) -> models.Q:
        """The lots `owner` holds now: "" the account (its own, and those returned to it), else that entity."""
        if not owner:
            return models.Q(entity="") | models.Q(returned_at__isnull=False)
        return models.Q(entity=owner, returned_at__isnull=True)


class CreditLedgerEntry(models.Model):
    """One movement of a customer's credits: granted, consumed, taken back, held, or rolled over."""

    class Type(models.TextChoices):
        GRANT = "grant"
        CONSUME = "consume"
        REVOKE = "revoke"
        HOLD = "hold"  # set aside by a hold (-)
        HOLD_RETURN = (
            "hold_return",
            "hold returned",
        )  # what a confirm did not take, a release or an expiry (+)
        ROLLOVER = "rollover"  # unspent plan credits carried from a period's lot (-) into the next one's (+)
        FORFEITED = (
            "forfeited"  # what an entity's lot had left when the entity was removed, where the plan forfeits
        )
        CORRECTION = "correction"  # a waterfall event's usage correction: + given back, − taken

    id = PublicIdField(prefix="cle")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="+")
    lot = models.ForeignKey(CreditLot, on_delete=models.CASCADE, related_name="entries")
    type = models.CharField(max_length=12, choices=Type.choices)
    amount = models.BigIntegerField()  # signed: + granted, - consumed or taken back
    reference = models.CharField(max_length=255, blank=True)  # the consume id, purchase, payment or grant
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="when")

    class Meta:
        indexes = [models.Index(fields=["customer", "feature", "-created_at"])]
        verbose_name = "credit ledger entry"
        verbose_name_plural = "credit ledger entries"

    def __str__(self) -> str:
        return self.id


class EntitlementState(models.Model):
    """The digest of a customer's last announced entitlements: `entitlements.updated` fires when it changes."""

    customer = models.OneToOneField(
        "customers.Customer", on_delete=models.CASCADE, primary_key=True, related_name="entitlement_state"
    )
    digest = models.CharField(max_length=64)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "entitlement state"
        verbose_name_plural = "entitlement states"

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.digest[:12]}"


class Hold(models.Model):
    """Units of a metered, credits or allocation feature set aside for a customer until confirmed (the same or
    fewer units become usage), released, or expired (`services.holds`); a lease reports usage against its hold
    as it goes (`consumed`). While active, the units not yet used count against the limit (a counter's `held`)
    or are out of the balance (credit lots, ledger entries `hold`)."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        CONFIRMED = "confirmed"
        RELEASED = "released"
        EXPIRED = "expired"

    id = PublicIdField(prefix="hold")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="holds")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="+")
    hold_id = models.CharField(max_length=255, verbose_name="hold ID (the tenant's)")
    quantity = models.BigIntegerField()
    # Units already recorded as usage against the hold (a lease's reported events); they are used, not held.
    consumed = models.BigIntegerField(default=0, verbose_name="reported")
    confirmed = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    # metered: the period whose counter holds the units; credits: [[lot id, units], ...] taken from each lot.
    period_start = models.DateTimeField(null=True, blank=True, verbose_name="period from")
    lots = models.JSONField(default=list, blank=True)
    # metered: the usage windows its units were taken from, {window: start (ISO 8601)}
    windows = models.JSONField(default=dict, blank=True, db_default={})
    # metered with a credits waterfall: the last `covered` of its units are paid from credits (`credit_cost` a
    # unit, taken from `lots`, of the feature `paid_with`); used units are the others first
    covered = models.BigIntegerField(default=0, db_default=0, verbose_name="paid with credits")
    paid_with = models.ForeignKey(
        "catalog.Feature", on_delete=models.SET_NULL, related_name="+", null=True, blank=True, db_index=False
    )
    credit_cost = models.PositiveIntegerField(null=True, blank=True, verbose_name="credits a unit")
    # a metered hold naming one of the customer's entities: its units count on the entity's counter too
    entity = models.CharField(max_length=255, blank=True, default="", db_default="", verbose_name="entity")
    # ... and in the entity's own usage windows: {window: start (Unix seconds)}, as `windows` for the account's
    entity_windows = models.JSONField(default=dict, blank=True, db_default={})
    # a model call's: {"estimate": …, "confirmed": …} as priced (`services.hold_pricing`); None for units
    dimensions = models.JSONField(null=True, blank=True)
    overrun = models.BigIntegerField(default=0, db_default=0, verbose_name="used beyond the hold")
    expires_at = models.DateTimeField(verbose_name="expires")
    created_at = models.DateTimeField(verbose_name="created")
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name="ended")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "hold_id"], name="hold_unique_per_project"),
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="hold_quantity_positive"),
            models.CheckConstraint(
                condition=models.Q(consumed__gte=0, consumed__lte=models.F("quantity")),
                name="hold_consumed_within",
            ),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"], name="hold_active_expiry", condition=models.Q(status="active")
            ),
            models.Index(fields=["customer", "feature", "status"], name="hold_customer_feature"),
        ]

    def __str__(self) -> str:
        return self.hold_id
