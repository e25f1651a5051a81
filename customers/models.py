"""Customers: one end user of one project, and the Stripe test clocks their Stripe customers may live on."""

from django.db import models
from django.db.models import Q

from core.ids import PublicIdField


class Customer(models.Model):
    """One end user of one project (the same person in two projects is two customers)."""

    id = PublicIdField(prefix="cust")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="customers")
    external_id = models.CharField(max_length=255, verbose_name="tenant's user ID")
    email = models.EmailField(blank=True)
    name = models.CharField(max_length=255, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Fixed by the first purchase; every later purchase must be in it.
    currency = models.CharField(max_length=3, blank=True)
    stripe_customer_id = models.CharField(max_length=100, blank=True, verbose_name="Stripe customer")
    # An email or name change Stripe has not heard of yet: set in the change's transaction, cleared once Stripe
    # holds those values. The task queued on commit sends it; beat's sweep sends what a lost task left.
    stripe_sync_pending = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")
    # Set when the person's data was erased (`backoffice.services.customer_erase`): the row stays, as the money
    # rows point at it, but holds nothing personal any more, and the API no longer finds it (404).
    erased_at = models.DateTimeField(null=True, blank=True, verbose_name="personal data erased")
    # The Stripe test clock its Stripe customer was created on (test mode only, `billing.testclocks`): set
    # before the Stripe customer exists, never changed after (Stripe cannot move a customer onto a clock).
    test_clock = models.ForeignKey(
        "customers.TestClock",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customers",
        verbose_name="Stripe test clock",
    )

    class Meta:
        db_table = "billing_customer"
        permissions = [
            ("export_customer_data", "Can export a customer's personal data"),
            ("erase_customer_data", "Can erase a customer's personal data"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="customer_external_id_unique"),
            models.UniqueConstraint(
                fields=["project", "stripe_customer_id"],
                condition=~Q(stripe_customer_id=""),
                name="customer_stripe_id_unique",
            ),
        ]
        # Webhooks route by Stripe's customer id before they know the project.
        indexes = [
            models.Index(fields=["stripe_customer_id"]),
            # The sweep's look-up: only the few customers with a change pending are in it.
            models.Index(
                fields=["updated_at"],
                condition=Q(stripe_sync_pending=True),
                name="customer_stripe_sync_pending",
            ),
            models.Index(
                fields=["project", "created_at", "id"], name="customer_list_page"
            ),  # core.pagination
            # The back office's list of every project's customers, newest first (read backwards).
            models.Index(fields=["created_at", "id"], name="customer_admin_list"),
        ]
        verbose_name = "customer"
        verbose_name_plural = "customers"

    def __str__(self) -> str:
        return self.external_id


class TestClock(models.Model):
    """A Stripe test clock of a project whose Stripe key is a test key: the customers created on it, with their
    subscriptions and invoices, live at its frozen time, which the tenant moves forward to simulate renewals.
    Stripe's clock is the truth; this row mirrors what Stripe last answered (`billing.testclocks`)."""

    __test__ = False  # a model, not a pytest test class, whatever its name

    class Status(models.TextChoices):
        READY = "ready"
        ADVANCING = "advancing"
        INTERNAL_FAILURE = "internal_failure"

    id = PublicIdField(prefix="tclk")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="test_clocks")
    name = models.CharField(max_length=300, blank=True)
    frozen_time = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.READY)
    # While advancing: the frozen time Stripe is moving the clock to.
    advancing_to = models.DateTimeField(null=True, blank=True)
    # Stripe deletes a clock, and its customers, by then.
    deletes_after = models.DateTimeField()
    stripe_test_clock_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "billing_testclock"
        constraints = [
            models.UniqueConstraint(
                fields=["project", "stripe_test_clock_id"], name="test_clock_stripe_id_unique"
            ),
        ]
        verbose_name = "test clock"
        verbose_name_plural = "test clocks"

    def __str__(self) -> str:
        return self.name or self.pk
