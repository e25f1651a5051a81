"""Subscriptions, their items and their invoices, mirrored from Stripe."""

from django.db import models
from django.db.models import Q

from catalog.models import Price
from core.ids import PublicIdField


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
    # Statuses a subscription never leaves: it bills nothing more and grants nothing.
    ENDED_STATUSES = (Status.CANCELED, Status.INCOMPLETE_EXPIRED)

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
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name="ended")
    stripe_subscription_id = models.CharField(max_length=255, verbose_name="Stripe subscription")
    stripe_price_id = models.CharField(max_length=255, blank=True, verbose_name="Stripe price")
    # The discount in force (billing.services.discount_mirror): {stripe_discount_id, coupon, promotion_code,
    # percent_off | amount_off + currency, duration, end}, or null.
    discount = models.JSONField(null=True, blank=True)
    # `created` of the newest Stripe event applied: an older event is not applied again.
    stripe_event_created = models.BigIntegerField(
        default=0, verbose_name="newest Stripe event applied (Unix time)"
    )
    # What this subscription has counted in the MRR figure (billing.models.revenue): millionths of a minor unit
    # a month, in `mrr_currency`; 0 while it is not live.
    mrr_counted = models.BigIntegerField(default=0, editable=False)
    mrr_currency = models.CharField(max_length=3, blank=True, editable=False)
    # The change Stripe's subscription schedule holds for a later phase (billing.services.subscription_schedules):
    # {stripe_schedule_id, price, quantity, items: [[price key, quantity]], effective_at (Unix time)}, or null.
    pending_change = models.JSONField(null=True, blank=True, editable=False)
    # `created` of the newest `subscription_schedule.*` event applied to `pending_change`.
    schedule_event_created = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        permissions = [("manage_subscription", "Can cancel and resume subscriptions")]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "stripe_subscription_id"], name="subscription_stripe_id_unique"
            )
        ]
        indexes = [
            models.Index(fields=["project", "created_at", "id"], name="subscription_list_page"),
            # The dashboard's churn per month (backoffice.dashboard): the cancellations of a window.
            models.Index(
                fields=["canceled_at"], condition=Q(canceled_at__isnull=False), name="subscription_churn"
            ),
        ]
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
    # The product's version it is on (`catalog.ProductVersion`): the one in force when Stripe created the item, or
    # when the item moved to another product; kept while later versions are published.
    product_version = models.PositiveIntegerField(default=1, db_default=1)
    # A move to another version at the period's end (`billing.services.version_moves`): the version, and when it
    # takes effect (the period's end as the move read it); null when none is scheduled.
    pending_version = models.PositiveIntegerField(null=True, blank=True)
    pending_version_at = models.DateTimeField(null=True, blank=True)
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
    # The customer balance the invoice took at finalization (Stripe's `ending_balance` − `starting_balance`): a
    # credit applied is positive, a debt added negative.
    balance_applied = models.BigIntegerField(default=0, verbose_name="customer balance applied")
    period_start = models.DateTimeField(null=True, blank=True, verbose_name="period from")
    period_end = models.DateTimeField(null=True, blank=True, verbose_name="period until")
    # When Stripe says the invoice was paid (`status_transitions.paid_at`): its lines are earned from then on.
    paid_at = models.DateTimeField(null=True, blank=True, verbose_name="paid on")
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
        permissions = [("correct_invoice", "Can void invoices and mark them uncollectible")]
        verbose_name = "invoice"
        verbose_name_plural = "invoices"

    def __str__(self) -> str:
        return self.number or self.id


# The invoices that bill a whole period in advance, and so grant the plan's credits for it. A plan change in the
# middle of a period (`subscription_update`, prorations) grants nothing: the new plan's credits come with the next
# period's invoice.
# The invoices that may bill a whole period in advance, and so grant the plan's credits for it: the first, each
# renewal, and a change that restarts the period (monthly ↔ yearly: its line for the new price is not a proration).
# A change within the period bills prorations only, and grants nothing (`entitlement_facts._plan_lines`).
PLAN_CREDIT_REASONS = ("subscription_create", "subscription_cycle", "subscription_update")
INVOICE_FINALIZED = ("open", "paid")  # a draft's lines may still change; a void invoice bills nothing
