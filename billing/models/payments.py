"""Carts, payments, their Checkout Sessions and refunds.

Money is always an integer number of minor units (`*_amount`, `amount`) next to a lowercase ISO `currency`.
Rows mirrored from Stripe keep the Stripe id they correspond to, unique per project."""

from django.db import models
from django.db.models import Q

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
        OFF_SESSION = (
            "off_session",
            "Off session",
        )  # a saved card charged without the customer (auto-recharge)

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
    payment_method = models.CharField(
        max_length=255, blank=True, verbose_name="saved payment method"
    )  # the Stripe PaymentMethod an off-session payment is charged to, chosen once before Stripe is called
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
    # What that dispute holds back (Stripe's dispute `amount`, in minor units); 0 with no dispute.
    dispute_amount = models.BigIntegerField(default=0, verbose_name="disputed")
    expires_at = models.DateTimeField(null=True, blank=True, verbose_name="expires")
    succeeded_at = models.DateTimeField(null=True, blank=True, verbose_name="succeeded")
    # What this payment has counted in the revenue figures (billing.models.revenue): amount and UTC day.
    revenue_counted = models.BigIntegerField(default=0, editable=False)
    revenue_day = models.DateField(null=True, blank=True, editable=False)
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
            # The dashboard's failed payments per month (backoffice.dashboard): the failures of a window.
            models.Index(fields=["created_at"], condition=Q(status="failed"), name="payment_failed"),
            # The revenue metrics' part-days (backoffice.metrics): a few hours of one project's paid payments.
            models.Index(
                fields=["project", "succeeded_at"],
                condition=Q(succeeded_at__isnull=False),
                name="payment_revenue_hours",
            ),
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
    # What this refund has counted in the revenue figures (billing.models.revenue): amount and UTC day.
    revenue_counted = models.BigIntegerField(default=0, editable=False)
    revenue_day = models.DateField(null=True, blank=True, editable=False)
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
            ),
            # The revenue metrics' part-days (backoffice.metrics): a few hours of one project's refunds.
            models.Index(fields=["project", "created_at"], name="refund_revenue_hours"),
        ]
        verbose_name = "refund"
        verbose_name_plural = "refunds"

    def __str__(self) -> str:
        return self.id


DISPUTE_LOST = "lost"  # Stripe's dispute status once the bank sided with the cardholder
# A dispute's statuses whose funds Stripe holds back (an inquiry's `warning_*` withdraws nothing; a won one was
# withdrawn and reinstated).
DISPUTE_HELD_BACK = ("needs_response", "under_review", DISPUTE_LOST)
FULFILLABLE = (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED, Payment.Status.DISPUTED)
# A subscription's period is paid by these too: a trial's first invoice (or one a coupon zeroes) is paid with 0.
PLAN_PAID = (*FULFILLABLE, Payment.Status.NO_PAYMENT_REQUIRED)
