"""The Stripe event inbox: every verified delivery stored once, then processed by workers."""

from typing import Any

from django.db import models

from core.crypto import EncryptedTextField
from core.ids import PublicIdField
from stripe_gateway.gateway import stripe_id


class StripeEvent(models.Model):
    """One Stripe event, unique per Stripe account (the platform's, or a project's own)."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSING = "processing"
        PROCESSED = "processed"
        FAILED = "failed"
        IGNORED = "ignored"

    id = PublicIdField(prefix="sevt")
    # "platform", or the id of the project whose own Stripe account sent it.
    account = models.CharField(max_length=40)
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="stripe_events"
    )
    stripe_event_id = models.CharField(max_length=255, verbose_name="Stripe event")
    type = models.CharField(max_length=100, db_index=True)
    api_version = models.CharField(max_length=50, blank=True, verbose_name="Stripe API version")
    stripe_created = models.BigIntegerField(
        help_text="Stripe's `created` (Unix seconds): orders events of one object.",
        verbose_name="created at Stripe (Unix time)",
    )
    payload = models.JSONField()
    # Events of one key (the Stripe customer, else the object) are applied one at a time, in Stripe's order.
    ordering_key = models.CharField(max_length=300, default="", verbose_name="applied in turn with")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    # The project it is applied for, the group of the fair claim (`webhooks.services.fairness`): the project
    # whose own account sent it, or the one a platform event's object names in `metadata.tollgate_project`; "" for
    # platform events that name none (a group of their own).
    tenant = models.CharField(max_length=40, blank=True, default="", verbose_name="fair share of")
    # The id of the intake request that stored it (Stripe's delivery), so the worker's lines for the event carry
    # it whichever bell woke the worker ("" for events stored otherwise: a replay, a fetch).
    request_id = models.CharField(max_length=128, blank=True, default="", verbose_name="Request ID")
    attempts = models.PositiveIntegerField(default=0)
    # A failed attempt waits until then (retries are scheduled here, not as broker countdowns).
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name="next attempt")
    # Deadlocks and serialization failures met while applying it, each retried at once.
    conflicts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, verbose_name="error of the last attempt")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name="received")
    processing_started_at = models.DateTimeField(null=True, blank=True, verbose_name="processing started")
    processed_at = models.DateTimeField(null=True, blank=True, verbose_name="processed")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        db_table = "webhooks_stripeevent"  # the table of the app this model came from
        permissions = [
            ("replay_stripeevent", "Can replay Stripe events"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "stripe_event_id"], name="stripe_event_unique_per_account"
            )
        ]
        indexes = [
            models.Index(fields=["status", "updated_at"]),
            # The claim (the due events of one key, oldest first), and the events an object's key names.
            models.Index(fields=["ordering_key", "status", "stripe_created"], name="stripe_event_by_key"),
            # A tenant's events waiting their turn, oldest first (the next key its freed share queues).
            models.Index(fields=["tenant", "status", "received_at"], name="stripe_event_by_tenant"),
            # The few events that met a conflict: `/metrics` sums their conflicts without reading the others.
            models.Index(
                fields=["conflicts"], condition=models.Q(conflicts__gt=0), name="stripe_event_conflicted"
            ),
        ]
        ordering = ["-received_at"]
        verbose_name = "Stripe event"
        verbose_name_plural = "Stripe events"

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_event_id}"

    @property
    def data_object(self) -> dict[str, Any]:
        return dict(self.payload.get("data", {}).get("object") or {})

    def told_payment_intent(self, invoice_id: str) -> str:
        """The PaymentIntent that the newest stored `invoice_payment.*` event of the invoice names, or "" (what
        billing's handlers ask of the inbox: `billing.handlers.event.StripeEventIn.told_payment_intent`)."""
        stored = (
            StripeEvent.objects.filter(
                # Keyed by the invoice when stored, by its customer (this event's own key) once handed over.
                ordering_key__in=[f"{self.account}:{invoice_id}", self.ordering_key],
                type__startswith="invoice_payment.",
                payload__data__object__invoice=invoice_id,
            )
            .order_by("-stripe_created")
            .values_list("payload", flat=True)
            .first()
        )
        return stripe_id(
            ((stored or {}).get("data", {}).get("object") or {}).get("payment", {}).get("payment_intent")
        )


class StripeEventsPruned(models.Model):
    """What retention pruned from the inbox so far (one row, `webhooks.services.retention`): the counter of
    conflicts in `/metrics` adds the pruned events' conflicts to those of the events kept, so it never goes back."""

    events = models.BigIntegerField(default=0, verbose_name="events pruned")
    conflicts = models.BigIntegerField(default=0, verbose_name="their conflicts")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="last pruned")

    class Meta:
        db_table = "webhooks_stripeeventspruned"
        verbose_name = "pruned Stripe events tally"
        verbose_name_plural = "pruned Stripe events tallies"

    def __str__(self) -> str:
        return f"{self.events} pruned"


class StripeWebhookEndpoint(models.Model):
    """Tollgate's endpoint registered at a Stripe account, with its signing secret (encrypted)."""

    id = PublicIdField(prefix="swe")
    account = models.CharField(max_length=40, unique=True)
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    stripe_endpoint_id = models.CharField(max_length=255, verbose_name="Stripe endpoint")
    url = models.URLField(max_length=2000, verbose_name="URL")
    secret = EncryptedTextField(blank=True, default="")
    # The API version Stripe renders its events at (the pinned one; "" for one registered before versions were).
    api_version = models.CharField(max_length=50, blank=True, default="", verbose_name="Stripe API version")
    # The secret of the endpoint this one replaced (at another API version), accepted until then: deliveries the
    # old endpoint signed before it was deleted still verify.
    previous_secret = EncryptedTextField(blank=True, default="")
    previous_secret_until = models.DateTimeField(
        null=True, blank=True, verbose_name="previous secret accepted until"
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        db_table = "webhooks_stripewebhookendpoint"
        verbose_name = "Stripe webhook endpoint"
        verbose_name_plural = "Stripe webhook endpoints"

    def __str__(self) -> str:
        return f"{self.account} → {self.url}"
