"""Billing records: carts, checkout sessions, payments, subscriptions, invoices, refunds, reconciliation, discounts.

Money is always an integer number of minor units (`*_amount`, `amount`) next to a lowercase ISO `currency`.
Rows mirrored from Stripe keep the Stripe id they correspond to, unique per project."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from catalog.models import Price
from core.crypto import EncryptedTextField
from core.ids import PublicIdField


class Cart(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        CHECKED_OUT = "checked_out"  # frozen: a checkout was created from it
        DELETED = "deleted"

    id = PublicIdField(prefix="cart")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="carts")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="carts")
    currency = models.CharField(max_length=3, blank=True)  # set by the first item; one currency per cart
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        verbose_name = "cart"
        verbose_name_plural = "carts"

    def __str__(self) -> str:
        return self.id


class CartItem(models.Model):
    id = PublicIdField(prefix="citem")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="items")
    price = models.ForeignKey("catalog.Price", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="added")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cart", "price"], name="cart_item_one_line_per_price")]
        ordering = ["created_at", "id"]
        verbose_name = "cart item"
        verbose_name_plural = "cart items"

    def __str__(self) -> str:
        return self.id


class Payment(models.Model):
    """Money a customer owes or paid: a checkout, a PaymentIntent, or an invoice of a subscription."""

    class Type(models.TextChoices):
        SUBSCRIPTION = "subscription"
        ONE_TIME = "one_time"
        CART = "cart"

    class Flow(models.TextChoices):
        CHECKOUT = "checkout"
        INTENT = "intent"

    class Source(models.TextChoices):
        CHECKOUT = "checkout"
        INTENT = "intent"
        INVOICE = "invoice"

    class Status(models.TextChoices):
        PENDING = "pending"
        REQUIRES_PAYMENT_METHOD = "requires_payment_method"
        REQUIRES_ACTION = "requires_action"
        PROCESSING = "processing"
        SUCCEEDED = "succeeded"
        NO_PAYMENT_REQUIRED = "no_payment_required"
        FAILED = "failed"
        CANCELED = "canceled"
        EXPIRED = "expired"
        REFUNDED = "refunded"
        PARTIALLY_REFUNDED = "partially_refunded"
        DISPUTED = "disputed"

    OPEN_STATUSES = (
        Status.PENDING,
        Status.REQUIRES_PAYMENT_METHOD,
        Status.REQUIRES_ACTION,
        Status.PROCESSING,
    )
    PAID_STATUSES = (Status.SUCCEEDED, Status.PARTIALLY_REFUNDED, Status.REFUNDED, Status.DISPUTED)

    id = PublicIdField(prefix="pay")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="payments")
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="payments")
    type = models.CharField(max_length=20, choices=Type.choices)
    flow = models.CharField(max_length=20, choices=Flow.choices)
    source = models.CharField(max_length=20, choices=Source.choices)
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.PENDING)
    amount = models.BigIntegerField()
    amount_refunded = models.BigIntegerField(default=0, verbose_name="refunded")
    # The tax in `amount` (Stripe Tax, `automatic_tax`): the session's total_details.amount_tax or the invoice's taxes.
    amount_tax = models.BigIntegerField(default=0, verbose_name="tax (included)")
    # Taken off before `amount` (a promotion code): the session's total_details.amount_discount or the invoice's.
    amount_discount = models.BigIntegerField(default=0, verbose_name="discount (taken off)")
    # Asked for at creation (Checkout with Stripe Tax).
    automatic_tax = models.BooleanField(default=False, verbose_name="automatic tax (Stripe Tax)")
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=500, blank=True)
    # NULL, not "": unique per project only when the tenant gives one.
    reference = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    # A hash of the creating request's meaningful fields: the same reference with another body is a conflict.
    request_fingerprint = models.CharField(
        max_length=64, blank=True, verbose_name="fingerprint of the creating request"
    )
    # The caller's Idempotency-Key of the creating request: a retry after a Stripe failure (whose 5xx answer is
    # not replayed) resumes this payment instead of creating a second one.
    idempotency_key = models.CharField(
        max_length=255, blank=True, verbose_name="Idempotency-Key of the creating request"
    )
    metadata = models.JSONField(default=dict, blank=True)
    # What was bought: [{"price": id, "price_key", "product": id, "quantity", "unit_amount"}], frozen at creation.
    items = models.JSONField(default=list, blank=True)
    trial_days = models.PositiveIntegerField(null=True, blank=True, verbose_name="trial (days)")
    cart = models.ForeignKey(Cart, null=True, blank=True, on_delete=models.SET_NULL, related_name="payments")
    # The tenant's `promotion_code` applied at checkout; or `allow_promotion_codes`: Stripe's page asks for one.
    promotion_code = models.ForeignKey(
        "PromotionCode",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
        verbose_name="promotion code applied",
    )
    allow_promotion_codes = models.BooleanField(
        default=False, verbose_name="customer may enter a promotion code"
    )
    checkout_url = models.URLField(max_length=2000, blank=True, verbose_name="checkout link")
    client_secret = EncryptedTextField(blank=True, default="")
    stripe_checkout_session_id = models.CharField(
        max_length=255, blank=True, verbose_name="Stripe checkout session"
    )
    stripe_payment_intent_id = models.CharField(
        max_length=255, blank=True, verbose_name="Stripe payment intent"
    )
    stripe_subscription_id = models.CharField(max_length=255, blank=True, verbose_name="Stripe subscription")
    stripe_invoice_id = models.CharField(max_length=255, blank=True, verbose_name="Stripe invoice")
    last_error_code = models.CharField(max_length=100, blank=True, verbose_name="last error (Stripe's code)")
    decline_code = models.CharField(max_length=100, blank=True, verbose_name="decline reason (Stripe's code)")
    # Stripe's dispute status while one is open or after it closed (`needs_response`, `won`, `lost` …).
    dispute_status = models.CharField(max_length=30, blank=True, verbose_name="dispute")
    expires_at = models.DateTimeField(null=True, blank=True, verbose_name="expires")
    succeeded_at = models.DateTimeField(null=True, blank=True, verbose_name="succeeded")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        permissions = [
            ("refund_payment", "Can refund payments"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "reference"],
                condition=Q(reference__isnull=False),
                name="payment_reference_unique",
            ),
            models.UniqueConstraint(
                fields=["project", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="payment_idempotency_key_unique",
            ),
            # One payment per Stripe invoice: checkout completion, invoice.paid and reconciliation converge on it.
            models.UniqueConstraint(
                fields=["project", "stripe_invoice_id"],
                condition=~Q(stripe_invoice_id=""),
                name="payment_invoice_unique",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(amount_refunded__lte=models.F("amount")), name="payment_refund_within_amount"
            ),
        ]
        indexes = [
            models.Index(fields=["project", "customer", "-created_at"]),
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["stripe_payment_intent_id"]),
            models.Index(fields=["stripe_checkout_session_id"]),
            models.Index(fields=["stripe_invoice_id"]),
            models.Index(fields=["project", "created_at", "id"], name="payment_list_page"),  # core.pagination
        ]
        verbose_name = "payment"
        verbose_name_plural = "payments"

    def __str__(self) -> str:
        return self.id

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class CheckoutSession(models.Model):
    """Our side of a Stripe Checkout Session, created before it (so a retry finds it)."""

    class Mode(models.TextChoices):
        SUBSCRIPTION = "subscription"
        PAYMENT = "payment"

    class Status(models.TextChoices):
        OPEN = "open"
        COMPLETE = "complete"
        EXPIRED = "expired"

    id = PublicIdField(prefix="chk")
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="checkout_sessions"
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="checkout_sessions"
    )
    payment = models.OneToOneField(Payment, on_delete=models.CASCADE, related_name="checkout_session")
    mode = models.CharField(max_length=20, choices=Mode.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    success_url = models.URLField(max_length=2000, verbose_name="return link after payment")
    cancel_url = models.URLField(max_length=2000, verbose_name="return link if canceled")
    url = models.URLField(max_length=2000, blank=True, verbose_name="checkout link")
    expires_at = models.DateTimeField(verbose_name="expires")
    stripe_session_id = models.CharField(max_length=255, blank=True, verbose_name="Stripe checkout session")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        verbose_name = "checkout session"
        verbose_name_plural = "checkout sessions"

    def __str__(self) -> str:
        return self.id


class Subscription(models.Model):
    """A mirror of a Stripe subscription, kept current by webhooks (#5) and read by entitlements."""

    class Status(models.TextChoices):
        INCOMPLETE = "incomplete"
        INCOMPLETE_EXPIRED = "incomplete_expired"
        TRIALING = "trialing"
        ACTIVE = "active"
        PAST_DUE = "past_due"
        UNPAID = "unpaid"
        PAUSED = "paused"
        CANCELED = "canceled"

    # Statuses in which a customer "has" the subscription: a second one to the same product is refused.
    LIVE_STATUSES = (
        Status.INCOMPLETE,
        Status.TRIALING,
        Status.ACTIVE,
        Status.PAST_DUE,
        Status.UNPAID,
        Status.PAUSED,
    )

    id = PublicIdField(prefix="subs")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="subscriptions")
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="subscriptions")
    price = models.ForeignKey("catalog.Price", on_delete=models.PROTECT, related_name="subscriptions")
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="subscriptions")
    quantity = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=30, choices=Status.choices)
    current_period_start = models.DateTimeField(null=True, blank=True, verbose_name="period started")
    current_period_end = models.DateTimeField(null=True, blank=True, verbose_name="period ends")
    cancel_at_period_end = models.BooleanField(default=False, verbose_name="cancels at period end")
    trial_end = models.DateTimeField(null=True, blank=True, verbose_name="trial ends")
    canceled_at = models.DateTimeField(null=True, blank=True, verbose_name="canceled")
    stripe_subscription_id = models.CharField(max_length=255, verbose_name="Stripe subscription")
    stripe_price_id = models.CharField(max_length=255, blank=True, verbose_name="Stripe price")
    # The discount in force (billing.services.discount_mirror): {stripe_discount_id, coupon, promotion_code,
    # percent_off | amount_off + currency, duration, end}, or null.
    discount = models.JSONField(null=True, blank=True)
    # `created` of the newest Stripe event applied: an older event is not applied again.
    stripe_event_created = models.BigIntegerField(
        default=0, verbose_name="newest Stripe event applied (Unix time)"
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        permissions = [("manage_subscription", "Can cancel and resume subscriptions")]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "stripe_subscription_id"], name="subscription_stripe_id_unique"
            )
        ]
        indexes = [models.Index(fields=["project", "created_at", "id"], name="subscription_list_page")]
        verbose_name = "subscription"
        verbose_name_plural = "subscriptions"

    def __str__(self) -> str:
        return self.id


class SubscriptionItem(models.Model):
    """One price of a subscription (a base plan, an add-on, a metered price), mirrored from the Stripe
    subscription's `items` with it. `Subscription.price/product/quantity` repeat the primary item."""

    id = PublicIdField(prefix="si")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="items")
    price = models.ForeignKey("catalog.Price", on_delete=models.PROTECT, related_name="subscription_items")
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, related_name="subscription_items"
    )
    # Null for a metered item: it is billed in arrears from the usage reported to its meter.
    quantity = models.PositiveIntegerField(null=True, blank=True)
    usage_type = models.CharField(max_length=20, choices=Price.UsageType.choices)
    stripe_item_id = models.CharField(max_length=255)
    stripe_price_id = models.CharField(max_length=255, blank=True)
    # Its place in Stripe's list of the subscription's items (the API shows them in that order).
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "stripe_item_id"], name="subscription_item_stripe_id_unique"
            )
        ]
        ordering = ["position", "created_at", "id"]
        verbose_name = "subscription item"
        verbose_name_plural = "subscription items"

    def __str__(self) -> str:
        return self.id


class Invoice(models.Model):
    """A mirror of a Stripe invoice of a subscription (first, renewal, proration)."""

    id = PublicIdField(prefix="inv")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="invoices")
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="invoices")
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="invoices"
    )
    stripe_invoice_id = models.CharField(max_length=255, verbose_name="Stripe invoice")
    # Stripe's subscription of the invoice, kept even while the subscription's own event has not arrived yet
    # (its first invoice's events come before `customer.subscription.created`), so the link is filled then.
    stripe_subscription_id = models.CharField(
        max_length=255, blank=True, db_index=True, verbose_name="Stripe subscription"
    )
    # The PaymentIntent of the invoice's latest payment attempt (from `invoice_payment.*` or a read of
    # /v1/invoice_payments): Stripe's invoices no longer name it themselves.
    stripe_payment_intent_id = models.CharField(
        max_length=255, blank=True, db_index=True, verbose_name="Stripe payment intent"
    )
    number = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=30)
    billing_reason = models.CharField(max_length=50, blank=True, verbose_name="why billed")
    currency = models.CharField(max_length=3)
    subtotal = models.BigIntegerField(default=0)
    # What discounts took off the subtotal (Stripe's `total_discount_amounts`), before tax.
    discount = models.BigIntegerField(default=0)
    tax = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    amount_due = models.BigIntegerField(default=0, verbose_name="due")
    amount_paid = models.BigIntegerField(default=0, verbose_name="paid")
    amount_remaining = models.BigIntegerField(default=0, verbose_name="remaining")
    period_start = models.DateTimeField(null=True, blank=True, verbose_name="period from")
    period_end = models.DateTimeField(null=True, blank=True, verbose_name="period until")
    hosted_invoice_url = models.URLField(max_length=2000, blank=True, verbose_name="invoice page")
    invoice_pdf = models.URLField(max_length=2000, blank=True, verbose_name="invoice PDF")
    lines = models.JSONField(default=list, blank=True)
    stripe_event_created = models.BigIntegerField(
        default=0, verbose_name="newest Stripe event applied (Unix time)"
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "stripe_invoice_id"], name="invoice_stripe_id_unique")
        ]
        indexes = [models.Index(fields=["project", "created_at", "id"], name="invoice_list_page")]
        verbose_name = "invoice"
        verbose_name_plural = "invoices"

    def __str__(self) -> str:
        return self.number or self.id


class Refund(models.Model):
    """A refund of a payment, as Stripe has it: asked through Tollgate (its row is written before Stripe is
    called) or made at Stripe directly (mirrored from its events, the settle sweep or reconciliation)."""

    class Status(models.TextChoices):
        # Stripe's statuses of a refund: pending and requires_action hold the money back from the customer;
        # a succeeded refund may still fail later (`refund.failed`), which gives the money back.
        PENDING = "pending"
        REQUIRES_ACTION = "requires_action"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELED = "canceled"
        # Ours: asked, and Stripe's answer was lost. A retry of the same operation or the settle sweep reads
        # Stripe (`metadata.tollgate_refund`) and records what Stripe did.
        UNKNOWN = "unknown"

    # Counted in the payment's refunded amount, as Stripe counts them in the charge's `amount_refunded`.
    COUNTED_STATUSES = (Status.PENDING, Status.REQUIRES_ACTION, Status.SUCCEEDED)

    id = PublicIdField(prefix="rfd")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="refunds")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    stripe_refund_id = models.CharField(max_length=255, blank=True, verbose_name="Stripe refund")
    failure_reason = models.CharField(max_length=100, blank=True, verbose_name="failure reason")
    # The operation that asked for it (a tenant's Idempotency-Key, the late-payment refund of a payment, an
    # operator's form): its retries find this row and send Stripe the same idempotency key. Blank: made at
    # Stripe, or asked without a key (each such request is a refund of its own).
    operation = models.CharField(max_length=100, blank=True, verbose_name="operation")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.UniqueConstraint(
                fields=["project", "operation"],
                condition=~Q(operation=""),
                name="refund_operation_unique_per_project",
            ),
            models.UniqueConstraint(
                fields=["project", "stripe_refund_id"],
                condition=~Q(stripe_refund_id=""),
                name="refund_stripe_id_unique_per_project",
            ),
        ]
        indexes = [
            models.Index(
                fields=["status", "updated_at"],
                condition=Q(status__in=["pending", "requires_action", "unknown"]),
                name="refund_unsettled",
            )
        ]
        verbose_name = "refund"
        verbose_name_plural = "refunds"

    def __str__(self) -> str:
        return self.id


class ReconciliationRun(models.Model):
    """One comparison of local state with Stripe (and, with fix, its repair)."""

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    id = PublicIdField(prefix="recon")
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    fix = models.BooleanField(default=False)
    dry_run = models.BooleanField(default=False, verbose_name="dry run (nothing written)")
    checked = models.PositiveIntegerField(default=0)
    drift_count = models.PositiveIntegerField(default=0, verbose_name="drift found")
    fixed_count = models.PositiveIntegerField(default=0, verbose_name="repaired")
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True, verbose_name="started")
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name="finished")

    class Meta:
        permissions = [
            ("run_reconciliation", "Can run a reconciliation with Stripe"),
        ]
        ordering = ["-started_at"]
        verbose_name = "reconciliation run"
        verbose_name_plural = "reconciliation runs"

    def __str__(self) -> str:
        return self.id


class Drift(models.Model):
    """A difference between a local row and Stripe found by a reconciliation run."""

    class Kind(models.TextChoices):
        MISSING_LOCALLY = "missing_locally"
        MISSING_IN_STRIPE = "missing_in_stripe"
        MISMATCH = "mismatch"

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="drifts")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    object_type = models.CharField(max_length=40, verbose_name="object")
    stripe_id = models.CharField(max_length=255, verbose_name="Stripe ID")
    local_id = models.CharField(max_length=40, blank=True, verbose_name="ID here")
    field = models.CharField(max_length=60, blank=True)

    class Status(models.TextChoices):
        OPEN = "open"  # found, not repaired (a dry run, or a run without --fix)
        FIXED = "fixed"  # repaired, and the rows re-read afterwards match Stripe
        FAILED = "failed"  # a repair was applied but the rows still differ (see `detail`)
        RESOLVED = "resolved"  # a later complete run no longer found it (repaired by events or another run)

    local_value = models.CharField(max_length=255, blank=True, verbose_name="value here")
    stripe_value = models.CharField(max_length=255, blank=True, verbose_name="value at Stripe")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN, db_index=True)
    detail = models.TextField(blank=True, help_text="What still differed after a failed repair.")
    resolved_at = models.DateTimeField(null=True, blank=True, verbose_name="resolved")

    class Meta:
        verbose_name = "reconciliation drift"
        verbose_name_plural = "reconciliation drifts"

    def __str__(self) -> str:
        return f"{self.kind} {self.object_type} {self.stripe_id} {self.field}"


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
